"""The access report: who has access to what (CSV), unused accounts, access about to expire."""

from datetime import timedelta

from django.utils import timezone

from strongroom.audit.models import AuditEntry
from strongroom.identity.actions import create_api_token
from tests.conftest import client_for


def test_the_report_lists_roles_unused_accounts_and_expiring_tokens(admin, agent, viewer, make_user):
    idle = make_user("idle@staff.example", name="Ivy Idle")
    idle.date_joined = timezone.now() - timedelta(days=200)
    idle.save()
    create_api_token(user=agent, name="nightly export", expires_in=timedelta(days=3))

    page = client_for(admin).get("/settings/access/?days=90").content.decode()

    assert "agent@staff.example" in page and "viewer@staff.example" in page
    assert "Ivy Idle" in page.split("Accounts not used")[1]
    assert "nightly export" in page.split("expires within 14 days")[1]
    assert AuditEntry.objects.filter(code="access.report.viewed").exists()


def test_who_has_access_exports_as_csv(admin, agent):
    response = client_for(admin).get("/settings/access.csv")

    body = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert '"Alex Agent","agent@staff.example"' in body and '"agent"' in body
    assert AuditEntry.objects.filter(code="access.report.exported").exists()


def test_only_people_managers_see_the_report(agent, outsider):
    assert client_for(agent).get("/settings/access/").status_code == 403
    assert client_for(outsider).get("/settings/access.csv").status_code == 403
