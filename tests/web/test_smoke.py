from tests.conftest import client_for


def test_agent_sees_list_and_conversation(agent, conversation_a):
    client = client_for(agent)

    listing = client.get("/conversations/?view=all")
    page = client.get(f"/conversations/{conversation_a.public_id}/")

    assert listing.status_code == 200
    assert b"Order 1234 has not arrived" in listing.content
    assert page.status_code == 200
    assert b"my order has not arrived yet" in page.content


def test_list_rows_escape_hostile_subjects_and_names(agent, inbox_a):
    from strongroom.inboxes.ingest import ingest_raw
    from tests.conftest import make_mail

    ingest_raw(
        inbox_a,
        make_mail(
            subject="<script>alert(1)</script>",
            sender='"<img src=x onerror=alert(2)>" <evil@customer.example>',
            body="<b>preview</b>",
        ),
        source="import",
    )

    page = client_for(agent).get("/conversations/?view=all").content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "&lt;b&gt;preview&lt;/b&gt;" in page
