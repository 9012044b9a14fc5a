"""The canonical encoding of an entry: the bytes a leaf hash is taken over.

An entry is a JSON array (RFC 8259, UTF-8, no insignificant white space) of, in this order:

    [1, at_us, code, outcome, actor_kind, actor_id, token_id,
     target_kind, target_id, inbox_id, ip, user_agent, details]

`1` is the format version; `at_us` is microseconds since 1970-01-01 UTC; the strings are as
stored (empty when absent); `details` is an object with sorted keys whose values are strings,
integers, booleans, null or arrays of those. The entry's position in the log is not part of
the entry: it is the leaf index, which every proof carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

FORMAT_VERSION = 1
COLUMNS = (
    "at_us",
    "code",
    "outcome",
    "actor_kind",
    "actor_id",
    "token_id",
    "target_kind",
    "target_id",
    "inbox_id",
    "ip",
    "user_agent",
    "details",
)
_dumps = orjson.dumps
_Fragment = orjson.Fragment
_SORTED = orjson.OPT_SORT_KEYS


def encode_details(details: Mapping[str, Any]) -> str:
    return _dumps(dict(details), option=_SORTED).decode()


def encode_row(row: tuple[Any, ...]) -> bytes:
    """Encode a row of COLUMNS (details as stored text) into the entry bytes."""
    details = row[11]
    if not isinstance(details, str | bytes):
        details = bytes(details)
    # The details go in verbatim (a Fragment is written as it is): they are already canonical JSON.
    return _dumps((FORMAT_VERSION, *row[:11], _Fragment(details)))


def decode(entry: bytes) -> dict[str, Any]:
    values = orjson.loads(entry)
    if not isinstance(values, list) or len(values) != 13 or values[0] != FORMAT_VERSION:
        raise ValueError("not an audit entry of format version 1")
    return dict(zip(COLUMNS, values[1:], strict=True))
