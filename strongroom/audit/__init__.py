"""The tamper-evident audit trail (docs/audit.md).

`audit.record(code, actor=..., target=..., details=...)` is the only writer. Codes come from
the catalogue in events.py. The log is a Merkle tree (merkle.py) over canonical entries
(encoding.py), signed by checkpoints (checkpoints.py) and checked by verify.py.
"""

from __future__ import annotations

from typing import Any


def record(code: str, **kwargs: Any) -> int:
    """See strongroom.audit.log.record (imported here lazily: this package loads before models)."""
    from strongroom.audit.log import record as _record

    return _record(code, **kwargs)
