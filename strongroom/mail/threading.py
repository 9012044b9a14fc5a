"""Conversation tokens in Message-IDs and plus-addresses.

Every outbound Message-ID carries the conversation's token: <sr.TOKEN.RANDOM@domain>. A reply
quotes it back in In-Reply-To or References, which is how it finds its conversation. The
token is 128 random bits, so it cannot be guessed, and it says nothing about the inbox or
the customer. The same token may also ride in a plus-address (support+TOKEN@example.com).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from strongroom.crypto import random_token

TOKEN_LENGTH = 26  # 16 random bytes in base32
TOKEN_RE = re.compile(r"^<sr\.([a-z2-7]{26})\.[a-z2-7]{4,32}@[^<>@\s]+>$")
PLUS_RE = re.compile(r"^(?P<local>[^+@]+)\+(?P<token>[a-z2-7]{26})@(?P<domain>[^@]+)$")


def new_thread_token() -> str:
    return random_token(16)


def make_message_id(thread_token: str, domain: str) -> str:
    """A fresh Message-ID for an outbound message of the conversation with `thread_token`."""
    return f"<sr.{thread_token}.{random_token(10)}@{domain}>"


def tokens_in_message_ids(message_ids: Iterable[str]) -> list[str]:
    """Conversation tokens found in Message-IDs, most recent reference first."""
    found: list[str] = []
    for message_id in message_ids:
        match = TOKEN_RE.match(message_id.strip().lower())
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def token_in_plus_address(address: str, inbox_address: str) -> str | None:
    """The token of support+TOKEN@example.com when the base address is `inbox_address`."""
    match = PLUS_RE.match(address.lower())
    if not match:
        return None
    if f"{match.group('local')}@{match.group('domain')}" != inbox_address.lower():
        return None
    return match.group("token")


def plus_address(inbox_address: str, thread_token: str) -> str:
    local, _, domain = inbox_address.partition("@")
    return f"{local}+{thread_token}@{domain}"
