from tests.conftest import client_for


def test_agent_sees_list_and_conversation(agent, conversation_a):
    client = client_for(agent)

    listing = client.get("/conversations/?view=all")
    page = client.get(f"/conversations/{conversation_a.public_id}/")

    assert listing.status_code == 200
    assert b"Order 1234 has not arrived" in listing.content
    assert page.status_code == 200
    assert b"my order has not arrived yet" in page.content
