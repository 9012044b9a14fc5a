"""The password rules of NIST SP 800-63B-4 (AUTH-1), as Django password validators.

Each validator answers one question, so a refused password gets one clear reason:

- `LengthValidator`: 15 to 256 characters, or 8 for a person with a second factor.
- `BlocklistValidator`: not a common password, a help-desk word or a keyboard walk (even with
  digits and symbols added around it), and not repetitive or sequential.
- `ContextWordsValidator`: not mostly the product name or the person's name or address.
- `BreachedPasswordValidator`: not in the Pwned Passwords file named by the
  BREACHED_PASSWORDS_FILE setting, found by binary search on disk.

Characters are counted and compared after NFKC normalisation. There are no composition rules
and no expiry (docs/passwords.md says why). Messages never repeat the password.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from django.conf import settings
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

log = logging.getLogger(__name__)

MIN_LENGTH = 15
MIN_LENGTH_WITH_SECOND_FACTOR = 8
MAX_LENGTH = 256
PRODUCT_NAME = "strongroom"
PROJECT_BLOCKLIST = Path(__file__).resolve().parent / "data" / "blocklist.txt"


def has_second_factor(user: AbstractBaseUser) -> bool:
    """Whether `user` signs in with a second factor (an authenticator app, a security key or a
    passkey), which lowers the minimum length to 8. A person not yet saved has none."""
    from strongroom.identity.mfa import has_second_factor as has_factor

    return has_factor(user)


def fold(text: str) -> str:
    """`text` as the rules compare it: NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


# --- length ----------------------------------------------------------------------------------


class LengthValidator:
    """At least 15 characters (8 with a second factor), at most 256, no control characters.

    Length counts Unicode code points after NFKC normalisation, so a character typed as a
    letter plus a combining accent counts once. Any printable character and space is
    accepted; control characters and lone surrogates are refused because they cannot be typed
    back reliably (and a surrogate cannot even be encoded for hashing).
    """

    def __init__(
        self,
        min_length: int = MIN_LENGTH,
        min_length_with_second_factor: int = MIN_LENGTH_WITH_SECOND_FACTOR,
        max_length: int = MAX_LENGTH,
    ) -> None:
        self.min_length = min_length
        self.min_length_with_second_factor = min_length_with_second_factor
        self.max_length = max_length

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        length = len(unicodedata.normalize("NFKC", password))
        minimum = self.min_length
        if user is not None and has_second_factor(user):
            minimum = self.min_length_with_second_factor
        if length < minimum:
            raise ValidationError(
                "This password is too short: use at least %(minimum)d characters.",
                code="password_too_short",
                params={"minimum": minimum},
            )
        if length > self.max_length:
            raise ValidationError(
                "This password is too long: use at most %(maximum)d characters.",
                code="password_too_long",
                params={"maximum": self.max_length},
            )
        if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in password):
            raise ValidationError(
                "This password contains control characters; use letters, digits, symbols and spaces.",
                code="password_control_characters",
            )

    def get_help_text(self) -> str:
        return (
            f"Use at least {self.min_length} characters ({self.min_length_with_second_factor} with two-factor "
            f"sign-in) and at most {self.max_length}. A few unrelated words make a good password."
        )


# --- blocklist, repetition and sequences -----------------------------------------------------

# Common substitutions, undone before looking a password up: "p@ssw0rd" is "password", and
# "1" stands for an i or an l.
_SUBSTITUTIONS = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i"}
_UNLEET = (str.maketrans({**_SUBSTITUTIONS, "1": "i"}), str.maketrans({**_SUBSTITUTIONS, "1": "l"}))
# A step from one character to the next along any of these (either way) is predictable:
# counting (with wrap-around), the alphabet, keyboard rows and columns.
_SEQUENCES = (
    "01234567890",
    "abcdefghijklmnopqrstuvwxyza",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
    "!@#$%^&*()_+",
    "1234567890-=",
)
_PREDICTABLE_STEPS = frozenset(
    step for sequence in _SEQUENCES for a, b in pairwise(sequence) for step in ((a, b), (b, a))
)
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[\W_]+")
_ENDS = re.compile(r"^[\W\d_]+|[\W\d_]+$")  # digits, symbols and spaces at either end
_SHORTEST_STRIPPED = 4  # a list entry found by stripping must be this long: "x" + 14 digits is not "x"
_SHORTEST_PATTERN = 8  # shorter pieces say too little about repetition


@cache
def blocked_words() -> frozenset[str]:
    """Django's 20,000 common passwords and the project's list (data/blocklist.txt), folded."""
    words = set(CommonPasswordValidator().passwords)
    for line in PROJECT_BLOCKLIST.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            words.add(line.strip())
    return frozenset(_SPACES.sub("", fold(word)) for word in words)


@cache
def _longest_blocked_word() -> int:
    return max(map(len, blocked_words()))


def _listed_forms(text: str) -> set[str]:
    """The forms of a folded password that are looked up in the blocklist: the whole of it
    without spaces, and every piece with letters at both ends from which only digits and
    symbols were stripped ("support" in "2026support!"), each also with substitutions undone."""
    joined = _SPACES.sub("", text)
    forms = {joined}
    letters = [i for i, ch in enumerate(joined) if ch.isalpha()]
    if letters:
        longest = _longest_blocked_word()
        for start in range(letters[0] + 1):
            for end in range(letters[-1] + 1, len(joined) + 1):
                if _SHORTEST_STRIPPED <= end - start <= longest:
                    forms.add(joined[start:end])
    return forms | {form.translate(table) for form in forms for table in _UNLEET}


def _is_periodic(form: str) -> bool:
    """Whether `form` is a shorter piece said at least twice ("abcabcabc", "passwordpassword")."""
    return any(form[period:] == form[:-period] for period in range(1, len(form) // 2 + 1))


def _is_predictable(form: str) -> bool:
    """Whether `form` repeats a piece, or three quarters of its steps from one character to
    the next repeat a character or follow a sequence ("aaaa", "4567", "qwer", "zyxw")."""
    if len(form) < _SHORTEST_PATTERN:
        return False
    steps = sum(a == b or (a, b) in _PREDICTABLE_STEPS for a, b in pairwise(form))
    return _is_periodic(form) or 4 * steps >= 3 * (len(form) - 1)


class BlocklistValidator:
    """Refuses common passwords, help-desk words and keyboard walks, also with digits and
    symbols added at either end, and passwords that repeat a piece or follow a sequence.

    The lists are Django's 20,000 most common passwords and strongroom/identity/data/
    blocklist.txt, both shipped with the code: nothing is fetched at run time. A password is
    refused when any form from `_listed_forms` is listed, or when the password, its letters
    and digits alone, or its part between leading and trailing digits and symbols, is
    predictable (`_is_predictable`).
    """

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        text = fold(password)
        if len(text) > MAX_LENGTH:
            return  # LengthValidator refuses it; the checks below are quadratic in the length
        if not _listed_forms(text).isdisjoint(blocked_words()):
            raise ValidationError(
                "This password is too common: it is, or is built on, a well-known password or word.",
                code="password_too_common",
            )
        shapes = (text, _NOT_ALNUM.sub("", text), _ENDS.sub("", text))
        if any(_is_predictable(shape) for shape in shapes):
            raise ValidationError(
                "This password is too predictable: it repeats characters or follows a sequence.",
                code="password_too_predictable",
            )

    def get_help_text(self) -> str:
        return "Don't use a common password, a keyboard pattern, or repeated or sequential characters."


# --- context words ---------------------------------------------------------------------------

PRODUCT = "the product name"
NAME = "your name"
ADDRESS = "your e-mail address"
_SHORTEST_CONTEXT_WORD = 3


def context_words(user: AbstractBaseUser | None) -> list[tuple[str, str]]:
    """The words a password must not mostly be made of, each with its kind: the product name,
    the parts of the person's name, the local part of their address (whole and split at
    dots, dashes and the like) and the first label of its domain; 3 characters or more,
    folded, letters and digits only."""
    words = [(PRODUCT_NAME, PRODUCT)]
    if user is None:
        return words
    name = fold(str(getattr(user, "name", "") or ""))
    words += [(part, NAME) for part in _NOT_ALNUM.split(name)]
    email = fold(str(getattr(user, "email", "") or ""))
    if "@" in email:
        local, _, domain = email.rpartition("@")
        words += [(_NOT_ALNUM.sub("", local), ADDRESS), *((part, ADDRESS) for part in _NOT_ALNUM.split(local))]
        words.append((_NOT_ALNUM.sub("", domain.split(".")[0]), ADDRESS))
    return [(word, kind) for word, kind in words if len(word) >= _SHORTEST_CONTEXT_WORD]


class ContextWordsValidator:
    """Refuses a password whose letters and digits are more than half covered by context words.

    Spaces and symbols are left out before measuring, so "Alex.Agent.2026!" is 13 characters
    of which "alex" and "agent" cover 9. Every occurrence of every word counts, overlaps
    once. A passphrase that merely mentions a name ("ada lovelace taught me to count") passes.
    The message names the kinds of words found, never the words or the password.
    """

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        text = _NOT_ALNUM.sub("", fold(password))
        if not text or len(text) > MAX_LENGTH:
            return
        covered = [False] * len(text)
        kinds: list[str] = []
        for word, kind in context_words(user):
            start = text.find(word)
            if start >= 0 and kind not in kinds:
                kinds.append(kind)
            while start >= 0:
                covered[start : start + len(word)] = [True] * len(word)
                start = text.find(word, start + 1)
        if 2 * sum(covered) > len(text):
            raise ValidationError(
                "Most of this password is %(kinds)s; choose words that say nothing about you or this service.",
                code="password_too_similar",
                params={"kinds": " and ".join(kinds)},
            )

    def get_help_text(self) -> str:
        return "Don't build your password mostly from your name, your e-mail address or the product name."


# --- breached passwords ----------------------------------------------------------------------

_PROBE_BYTES = 256  # a line is 40 + 1 + up to 10 digits + CRLF: one read holds the tail of one and the next
_LONGEST_LINE = 16 * 1024  # far beyond any real line; only a corrupt file gets here
_SAMPLES = 64
_LINE_FORMAT = re.compile(rb"[0-9A-Fa-f]{40}(:[0-9]+)?")


class _Line(NamedTuple):
    text: bytes  # without its line end
    next_offset: int  # where the following line starts

    @property
    def key(self) -> bytes:
        return self.text[:40].upper()

    @property
    def count(self) -> int:
        _, colon, count = self.text.partition(b":")
        return int(count) if colon and count.isdigit() else 1


def _line_at_or_after(file: BinaryIO, offset: int, size: int) -> _Line | None:
    """The first line that starts at or after byte `offset`, read with one read as a rule."""
    base = max(offset - 1, 0)  # a line starts at `offset` when the byte before it ends a line
    file.seek(base)
    buffer = b""
    start = 0 if offset == 0 else -1
    while True:
        chunk = file.read(_PROBE_BYTES)
        buffer += chunk
        at_end = not chunk or base + len(buffer) >= size
        if start < 0:
            newline = buffer.find(b"\n")
            start = newline + 1 if newline >= 0 else -1
        if start >= 0:
            end = buffer.find(b"\n", start)
            if end >= 0:
                return _Line(buffer[start:end].rstrip(b"\r"), base + end + 1)
            if at_end:
                return _Line(buffer[start:].rstrip(b"\r"), base + len(buffer)) if start < len(buffer) else None
        elif at_end:
            return None
        if len(buffer) > _LONGEST_LINE:
            raise OSError(f"no line end within {_LONGEST_LINE} bytes of byte {offset}: the file is corrupt")


def search_sorted_hashes(file: BinaryIO, sha1_hex: str) -> int:
    """How often the password with SHA-1 `sha1_hex` was breached, by binary search in `file`.

    `file` holds lines `HEXSHA1:COUNT` sorted by hash (LF or CRLF, the last line with or
    without a line end), opened in binary mode. Takes one seek and read per halving of the
    byte range, about 36 for the full 40 GB list, and never reads the file whole. Returns 0
    when the hash is absent.
    """
    target = sha1_hex.upper().encode("ascii")
    size = file.seek(0, os.SEEK_END)
    low, high = 0, size
    # Invariant: every line starting before `low` is below the target; the first line
    # starting at or after `high` (kept in `candidate`) is at or above it, or there is none.
    candidate: _Line | None = None
    while low < high:
        middle = (low + high) // 2
        line = _line_at_or_after(file, middle, size)
        if line is None or line.key >= target:
            high, candidate = middle, line
        else:
            low = line.next_offset
    return candidate.count if candidate is not None and candidate.key == target else 0


def breach_count(path: str | os.PathLike[str], password: str) -> int:
    """How often `password` (as typed, or NFKC-normalised) appears in the breached-password
    file at `path`. Raises OSError when the file cannot be read."""
    candidates = {password, unicodedata.normalize("NFKC", password)}
    with open(path, "rb", buffering=0) as file:
        return max(search_sorted_hashes(file, _sha1_hex(candidate)) for candidate in candidates)


def _sha1_hex(password: str) -> str:
    # SHA-1 is the list's lookup key, not a protection: the list is published as SHA-1.
    return hashlib.sha1(password.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


def _last_line(file: BinaryIO, size: int) -> bytes:
    file.seek(max(size - _PROBE_BYTES, 0))
    return file.read(_PROBE_BYTES).rstrip(b"\r\n").rpartition(b"\n")[2].rstrip(b"\r")


def check_breached_file(path: str | os.PathLike[str] | None) -> str | None:
    """What is wrong with the breached-password file at `path`, or None when it looks usable
    or no file is configured. For a system check: a configured list that cannot be used must
    stop start-up rather than let breached passwords through.

    Reads the first and last lines and 64 lines spread across the file (about 66 reads),
    and checks that they have the `HEXSHA1:COUNT` format and come in hash order.
    """
    if not path:
        return None
    name = f"STRONGROOM_BREACHED_PASSWORDS_FILE={os.fspath(path)}"
    if not Path(path).is_file():
        return f"{name} is not a file (missing, or a directory); passwords cannot be checked against it."
    try:
        with open(path, "rb", buffering=0) as file:
            size = file.seek(0, os.SEEK_END)
            lines = [_line_at_or_after(file, size * n // _SAMPLES, size) for n in range(_SAMPLES)]
            texts = [line.text for line in lines if line is not None]
            if size:
                texts.append(_last_line(file, size))
    except OSError as exc:
        return f"{name} cannot be read ({exc.strerror or exc}); passwords cannot be checked against it."
    if not texts:
        return f"{name} is empty."
    if not all(_LINE_FORMAT.fullmatch(text) for text in texts):
        return (
            f"{name} is not a Pwned Passwords SHA-1 file: its lines must read HEXSHA1:COUNT "
            "(the NTLM list and other formats are not supported)."
        )
    hashes = [text[:40].upper() for text in texts]
    if hashes != sorted(hashes):
        return f"{name} is not sorted by hash: download the list ordered by hash, or sort it (docs/passwords.md)."
    return None


class BreachedPasswordValidator:
    """Refuses a password found in the breached-password file (Pwned Passwords, SHA-1, sorted).

    The file is `path` if given, else the BREACHED_PASSWORDS_FILE setting, read at each
    validation; when neither names a file, nothing is checked. A configured file that cannot
    be read fails closed: every password is refused until it is fixed, and the error is logged.
    `check_breached_file` catches this at start-up.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        path = self.path if self.path is not None else str(getattr(settings, "BREACHED_PASSWORDS_FILE", "") or "")
        if not path:
            return
        try:
            count = breach_count(path, password)
        except OSError as exc:
            log.error("The breached-password file %s cannot be read (%s); refusing new passwords.", path, exc.strerror)
            raise ValidationError(
                "Passwords cannot be checked right now; please try again later or tell your administrator.",
                code="password_check_unavailable",
            ) from None
        if count:
            raise ValidationError(
                "This password has appeared in a data breach, so attackers try it first; choose another.",
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return "Don't use a password that has appeared in a data breach."
