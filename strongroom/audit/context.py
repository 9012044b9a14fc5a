"""Who is acting and from where, for the entries recorded while a request or a job runs.

Actions take `actor=` but not the request; the middleware (and the worker, and the command
line) set this context once, and `record()` adds the source address, the user agent and the
API token to every entry made under it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, replace

from strongroom.audit.events import ActorKind


@dataclass(frozen=True)
class Source:
    actor_kind: ActorKind = ActorKind.SYSTEM
    actor_id: str = ""
    token_id: str = ""
    ip: str = ""
    user_agent: str = ""


SYSTEM = Source()
_current: contextvars.ContextVar[Source] = contextvars.ContextVar("strongroom_audit_source", default=SYSTEM)


def current() -> Source:
    return _current.get()


@contextlib.contextmanager
def acting(source: Source) -> Iterator[Source]:
    token = _current.set(source)
    try:
        yield source
    finally:
        _current.reset(token)


def set_for_request(source: Source) -> contextvars.Token[Source]:
    return _current.set(source)


def reset(token: contextvars.Token[Source]) -> None:
    _current.reset(token)


def with_token(token_id: str) -> None:
    """Mark the rest of this request as made through the API token `token_id`."""
    _current.set(replace(_current.get(), token_id=token_id))


def as_worker(worker_id: str) -> contextlib.AbstractContextManager[Source]:
    return acting(Source(actor_kind=ActorKind.WORKER, actor_id=worker_id))
