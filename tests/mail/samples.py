"""Where the sample messages live, and how the tests read them (tests/fixtures/mail/)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
CORPUS = FIXTURES / "corpus"
HOSTILE = FIXTURES / "hostile"


def corpus_message(name: str) -> bytes:
    """The raw bytes of a corpus message, by its path under corpus/ (e.g. "flanker/torture.eml")."""
    return (CORPUS / name).read_bytes()


def hostile_message(name: str) -> bytes:
    """The raw bytes of a hand-written hostile sample, by its file name."""
    return (HOSTILE / name).read_bytes()
