"""The sidebar's counts: right for several inboxes, capped for huge queues."""

from strongroom.inboxes import actions
from strongroom.inboxes.ingest import ingest_raw
from strongroom.inboxes.listing import COUNT_CAP, sidebar_for
from tests.conftest import make_mail


def test_sidebar_counts_open_conversations_of_each_of_several_inboxes(make_inbox, make_user):
    person = make_user("multi@staff.example")
    inboxes = [make_inbox(f"box{n}@a.example") for n in range(3)]
    for n, inbox in enumerate(inboxes):
        actions.add_member(actor=None, inbox=inbox, user=person, role="agent")
        for m in range(n + 1):
            ingest_raw(inbox, make_mail(subject=f"{n}-{m}", to=inbox.address), source="import")
    closed = inboxes[2].conversations.first()
    actions.change_status(closed, actor=person, status="closed")

    sidebar = sidebar_for(person)

    assert [i.open_count for i in sidebar.inboxes] == [1, 2, 2]
    assert sidebar.all_open == 5
    assert sidebar.unassigned == 5


def test_sidebar_counts_stop_at_the_cap(make_user, inbox_a, inbox_b, monkeypatch):
    from strongroom.inboxes import listing

    person = make_user("capped@staff.example")
    for inbox in (inbox_a, inbox_b):
        actions.add_member(actor=None, inbox=inbox, user=person, role="agent")
    monkeypatch.setattr(listing, "COUNT_CAP", 3)
    for n in range(5):
        ingest_raw(inbox_a, make_mail(subject=f"a{n}"), source="import")
    ingest_raw(inbox_b, make_mail(subject="b", to=inbox_b.address), source="import")

    sidebar = sidebar_for(person)

    assert {i.pk: i.open_count for i in sidebar.inboxes} == {inbox_a.pk: 3, inbox_b.pk: 1}
    assert sidebar.unassigned == 3
    assert COUNT_CAP == 1000
