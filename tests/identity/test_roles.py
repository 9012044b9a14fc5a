"""Global roles: admin, auditor (the audit log, never content), member."""

import pytest

from strongroom.audit.detection import run_detection
from strongroom.audit.models import AuditEntry
from strongroom.errors import Conflict, NotAllowed
from strongroom.identity.actions import change_global_role
from tests.conftest import client_for


@pytest.fixture
def auditor(make_user):
    person = make_user("auditor@staff.example", name="Audrey Auditor")
    change_global_role(person, actor=None, role="auditor")
    return person


def test_an_auditor_reads_the_audit_log_but_no_conversation_and_manages_nothing(auditor, conversation_a):
    client = client_for(auditor)

    assert client.get("/audit/").status_code == 200
    assert client.get("/audit/alerts/").status_code == 200
    assert client.get(f"/conversations/{conversation_a.public_id}/").status_code == 404
    assert client.get("/settings/people/").status_code == 403
    assert client.get("/conversations/?view=all").content.count(b"conv-row") == 0


def test_a_role_change_is_recorded_and_raises_a_privilege_alert(admin, agent):
    change_global_role(agent, actor=admin, role="admin")

    entry = AuditEntry.objects.get(code="user.role.changed")
    assert entry.details_dict() == {"person": str(agent.public_id), "from": "member", "to": "admin"}
    assert "privilege_change" in [a.rule for a in run_detection()]


def test_the_last_admin_cannot_be_demoted(admin):
    with pytest.raises(Conflict, match="last active admin"):
        change_global_role(admin, actor=None, role="member")


def test_only_someone_with_the_roles_permission_changes_roles(agent, viewer):
    with pytest.raises(NotAllowed):
        change_global_role(viewer, actor=agent, role="admin")


def test_roles_are_changed_on_the_people_page(admin, agent):
    client_for(admin).post(f"/settings/people/{agent.public_id}/role", {"global_role": "auditor"})

    agent.refresh_from_db()
    assert agent.global_role == "auditor"


def test_the_role_picker_offers_exactly_the_catalogues_global_roles():
    from strongroom.identity.forms import ROLE_CHOICES
    from strongroom.identity.permissions import GLOBAL_ROLES

    assert {value for value, _label in ROLE_CHOICES} == set(GLOBAL_ROLES)
