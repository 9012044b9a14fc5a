"""Public identifiers are UUIDs; integer keys never appear in URLs or payloads."""

import uuid


def parse_public_id(value: object) -> uuid.UUID | None:
    """The UUID in `value`, or None when it is not one (treated like an unknown id)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
