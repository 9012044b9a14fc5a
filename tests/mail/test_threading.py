"""Conversation tokens in Message-IDs and plus-addresses."""

import re

import pytest

from strongroom.mail.threading import (
    TOKEN_LENGTH,
    make_message_id,
    new_thread_token,
    plus_address,
    token_in_plus_address,
    tokens_in_message_ids,
)

BASE32 = re.compile(r"^[a-z2-7]{26}$")


def test_thread_token_is_26_lowercase_base32_characters():
    token = new_thread_token()

    assert BASE32.match(token)
    assert len(token) == TOKEN_LENGTH == 26


def test_thread_tokens_differ_on_each_call():
    tokens = {new_thread_token() for _ in range(100)}

    assert len(tokens) == 100


def test_message_id_carries_the_token_and_round_trips():
    token = new_thread_token()

    message_id = make_message_id(token, "a.example")

    assert message_id.startswith(f"<sr.{token}.")
    assert message_id.endswith("@a.example>")
    assert tokens_in_message_ids([message_id]) == [token]


def test_message_ids_of_the_same_conversation_differ_but_share_the_token():
    token = new_thread_token()

    first, second = make_message_id(token, "a.example"), make_message_id(token, "a.example")

    assert first != second
    assert tokens_in_message_ids([first, second]) == [token]


def test_token_survives_a_mail_client_that_changes_case_and_adds_spaces():
    token = new_thread_token()
    message_id = make_message_id(token, "a.example")

    found = tokens_in_message_ids([f"  {message_id.upper()}\t"])

    assert found == [token]


def test_tokens_keep_the_order_they_are_given_in():
    first, second = new_thread_token(), new_thread_token()

    found = tokens_in_message_ids(
        ["<other@customer.example>", make_message_id(second, "a.example"), make_message_id(first, "a.example")]
    )

    assert found == [second, first]


@pytest.mark.parametrize(
    "forged",
    [
        "<sr.{token}@a.example>",  # no random part
        "<sr.{short}.abcdefgh@a.example>",  # token one character short
        "<sr.{token}a.abcdefgh@a.example>",  # token one character long
        "<sr.{token}.abc@a.example>",  # random part too short
        "<sr.{token}.abcdefgh@a@b.example>",  # two at-signs
        "<sr.{token}.abcdefgh@a.example> <x@y>",  # trailing junk
        "sr.{token}.abcdefgh@a.example",  # no angle brackets
        "<xx.{token}.abcdefgh@a.example>",  # wrong prefix
        "<sr.{digits}.abcdefgh@a.example>",  # 0, 1, 8, 9 are not base32
        "<sr.{token}.abcdefgh@>",  # no domain
    ],
)
def test_forged_message_id_with_the_wrong_shape_is_ignored(forged):
    token = new_thread_token()
    message_id = forged.format(token=token, short=token[:-1], digits="0189" + token[4:])

    found = tokens_in_message_ids([message_id])

    assert found == []


def test_plus_address_token_is_read_for_the_inbox_s_own_address():
    token = new_thread_token()

    found = token_in_plus_address(plus_address("support@a.example", token), "support@a.example")

    assert found == token


def test_plus_address_token_is_read_case_insensitively():
    token = new_thread_token()

    found = token_in_plus_address(f"Support+{token.upper()}@A.Example", "SUPPORT@a.example")

    assert found == token


@pytest.mark.parametrize(
    "address",
    [
        "support+{token}@b.example",  # same local part, another domain
        "sales+{token}@a.example",  # same domain, another local part
        "support+{token}@a.example.evil.example",  # domain with a suffix
        "support+{token}x@a.example",  # token too long
        "support+{short}@a.example",  # token too short
        "support+x+{token}@a.example",  # a second plus
    ],
)
def test_plus_address_token_is_rejected_unless_the_base_is_the_inbox_address(address):
    token = new_thread_token()

    found = token_in_plus_address(address.format(token=token, short=token[:-1]), "support@a.example")

    assert found is None


def test_plain_inbox_address_has_no_token():
    assert token_in_plus_address("support@a.example", "support@a.example") is None
