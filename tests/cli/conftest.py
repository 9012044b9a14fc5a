"""Running the `strongroom` command in this process, as an operator would from a shell."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from strongroom.cli import main


@dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str


@pytest.fixture
def strongroom(db: None, capsys: pytest.CaptureFixture[str], settings: Any) -> Iterator[Callable[..., Outcome]]:
    """Run `strongroom ARGS...` in-process; returns the exit status and what it printed.

    main() sets the process umask, which is put back afterwards. It also sets Django up again,
    which would configure logging anew with handlers writing to this test's captured stderr,
    closed once the test ends; logging stays as the test run configured it.
    """
    settings.LOGGING_CONFIG = None
    umask = os.umask(0o077)
    os.umask(umask)

    def run(*argv: str) -> Outcome:
        status = main(list(argv))
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    yield run

    os.umask(umask)
