"""Password rules (NIST SP 800-63B-4): length, blocklist, patterns, context words, breaches.

The validators are passed to Django's validate_password explicitly, so these tests do not
depend on AUTH_PASSWORD_VALIDATORS; the tests of allauth's form set it themselves.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from strongroom.identity import passwords
from strongroom.identity.actions import generated_password
from strongroom.identity.models import User
from strongroom.identity.passwords import (
    BlocklistValidator,
    BreachedPasswordValidator,
    ContextWordsValidator,
    LengthValidator,
    check_breached_file,
    search_sorted_hashes,
)
from tests.conftest import PASSWORD, client_for

LEAKED = ["a leaked passphrase from 2019", "another leaked passphrase!", "final leaked passphrase"]
UNSEEN = "a passphrase nobody has leaked yet"


def refusals(password: str, user: User | None = None, *validators: object) -> list[str]:
    """The codes of the rules `password` breaks, through Django's own entry point."""
    validators = validators or (LengthValidator(), BlocklistValidator(), ContextWordsValidator())
    try:
        validate_password(password, user, password_validators=list(validators))
    except ValidationError as exc:
        return [error.code for error in exc.error_list]
    return []


def messages(password: str, user: User | None = None, *validators: object) -> list[str]:
    try:
        validate_password(password, user, password_validators=list(validators))
    except ValidationError as exc:
        return exc.messages
    return []


def sha1(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


# --- length ----------------------------------------------------------------------------------


def test_fifteen_characters_are_enough_without_a_second_factor():
    assert refusals("kettle orbit fj") == []


def test_fourteen_characters_are_too_short_without_a_second_factor():
    assert refusals("kettle orbit f") == ["password_too_short"]


def test_a_person_without_a_second_factor_needs_fifteen_characters(make_user):
    user = make_user("dana@staff.example", mfa=False)

    assert passwords.has_second_factor(user) is False
    assert refusals("kettle orb", user) == ["password_too_short"]
    assert refusals("kettle orbit fj", user) == []


def test_eight_to_fourteen_characters_are_enough_with_an_authenticator_app(make_user):
    user = make_user("dana@staff.example")

    assert passwords.has_second_factor(user) is True
    assert refusals("kettle o", user) == []
    assert refusals("kettle orbit f", user) == []


def test_a_security_key_alone_is_a_second_factor(make_user):
    from allauth.mfa.models import Authenticator

    user = make_user("dana@staff.example", mfa=False)
    Authenticator.objects.create(user=user, type=Authenticator.Type.WEBAUTHN, data={"name": "Key", "credential": {}})

    assert refusals("kettle o", user) == []


def test_recovery_codes_alone_are_no_second_factor(make_user):
    from strongroom.identity.recovery_codes import generate_recovery_codes

    user = make_user("dana@staff.example", mfa=False)
    generate_recovery_codes(user, actor=user)

    assert refusals("kettle orb", user) == ["password_too_short"]


def test_seven_characters_are_too_short_with_a_second_factor(make_user):
    user = make_user("dana@staff.example")

    assert refusals("kettle ", user) == ["password_too_short"]


def test_a_form_without_a_person_asks_for_fifteen_characters():
    assert refusals("kettle orbit f", None) == ["password_too_short"]


def test_a_person_not_yet_saved_asks_for_fifteen_characters():
    assert refusals("kettle orbit f", User(email="new@staff.example")) == ["password_too_short"]


def test_too_short_message_names_the_minimum(make_user):
    user = make_user("dana@staff.example")

    assert messages("kettle", user, LengthValidator()) == ["This password is too short: use at least 8 characters."]
    assert messages("kettle", None, LengthValidator()) == ["This password is too short: use at least 15 characters."]


def test_a_combining_accent_counts_once_after_nfkc_normalisation():
    decomposed = "e\u0301" * 14  # 28 code points as typed, 14 characters after NFKC

    assert refusals(decomposed, None, LengthValidator()) == ["password_too_short"]


def test_a_compatibility_ligature_counts_as_the_letters_it_stands_for():
    ligatures = "\ufb01" * 8  # "ﬁ" x 8 is "fi" x 8 after NFKC: 16 characters

    assert refusals(ligatures, None, LengthValidator()) == []


def test_256_characters_are_accepted_and_257_refused():
    assert refusals("x" * 256, None, LengthValidator()) == []
    assert refusals("x" * 257, None, LengthValidator()) == ["password_too_long"]
    assert messages("x" * 257, None, LengthValidator()) == ["This password is too long: use at most 256 characters."]


def test_spaces_and_any_printable_unicode_are_accepted():
    assert refusals("  Grüße aus Köln, пароль 密码 🙂  ") == []


@pytest.mark.parametrize("control", ["\x00", "\x07", "\n", "\x1b", "\ud800"])
def test_control_characters_are_refused(control):
    assert refusals(f"kettle orbit{control}fjord", None, LengthValidator()) == ["password_control_characters"]


# --- blocklist -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Support2026!",  # the example of the brief, short as it is
        "Support2026!!!!!!",
        "HELPDESK 2026 !!!!!",
        "strongroom 12345678",
        "!!!Welcome!!!2026!!",
        "P@ssw0rd2026!!!!!",
        "Summer2026!!!!!!!",
        "ILoveYou1234567890",
        "1qaz2wsx3edc4rfv",
        "Correct Horse Battery Staple",
    ],
)
def test_listed_word_with_digits_and_symbols_around_it_is_refused(password):
    assert "password_too_common" in refusals(password, None, BlocklistValidator())


def test_blocklist_holds_djangos_list_and_the_project_list():
    words = passwords.blocked_words()

    assert len(words) > 19_000
    assert {"password", "iloveyou", "strongroom", "helpdesk", "changeme", "qwertzuiop"} <= words


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaaaaaa",
        "1234567890123456",
        "abcdefghijklmnop",
        "zyxwvutsrqponmlk",
        "9876543210987654",
        "qwertyuiopasdfgh",
        "!@#$%^&*()!@#$%^",
        "abcabcabcabcabca",
        "hunter2hunter2hunter2",
        "abcabcabcabc2026!",
        "1234abcd5678efgh",
        "kq! kq! kq! kq! kq!",
    ],
)
def test_repetitive_or_sequential_password_is_refused(password):
    assert refusals(password, None, BlocklistValidator()) == ["password_too_predictable"]


@pytest.mark.parametrize(
    "password",
    [
        "a much longer new passphrase 42",
        "kettle orbit fjord lantern",
        "water tower operation",
        "Strongroom is my favourite help desk",
        "the quick brown fox jumps",
        "GZ4Q7T2MXKJ3PWR5BN6YHD2LQA",
    ],
)
def test_passphrases_pass_every_rule(password):
    assert refusals(password) == []


def test_generated_one_time_passwords_pass_every_rule():
    person = User(email="new.person@staff.example", name="New Person")

    assert [refusals(generated_password(), person) for _ in range(20)] == [[]] * 20


# --- context words ---------------------------------------------------------------------------


def test_password_made_mostly_of_the_persons_name_is_refused(make_user):
    user = make_user("bq@orchard.example", name="Bartholomew Quince")

    assert messages("Bartholomew Quince 42", user, ContextWordsValidator()) == [
        "Most of this password is your name; choose words that say nothing about you or this service."
    ]


def test_password_made_mostly_of_the_persons_address_is_refused(make_user):
    user = make_user("zanzibar@orchard.example", name="Bea Quince")

    assert messages("Zanzibar Orchard 2026", user, ContextWordsValidator()) == [
        "Most of this password is your e-mail address; choose words that say nothing about you or this service."
    ]


def test_parts_of_a_dotted_address_count_as_the_address(make_user):
    user = make_user("tiberius.mallow@orchard.example", name="Bea Quince")

    assert refusals("Mallow Tiberius !!", user, ContextWordsValidator()) == ["password_too_similar"]


def test_password_made_mostly_of_the_product_name_is_refused_without_a_person():
    assert messages("strongroom rocks", None, ContextWordsValidator()) == [
        "Most of this password is the product name; choose words that say nothing about you or this service."
    ]


def test_half_made_of_context_words_passes_and_more_than_half_is_refused():
    assert refusals("strongroom xkq7vbn2pz", None, ContextWordsValidator()) == []  # 10 of 20
    assert refusals("strongroom xkq7vbn2p", None, ContextWordsValidator()) == ["password_too_similar"]  # 10 of 19


def test_a_passphrase_that_mentions_the_name_passes(make_user):
    user = make_user("bq@orchard.example", name="Bartholomew Quince")

    assert refusals("quince jam is nicer than any marmalade", user) == []


def test_name_parts_shorter_than_three_characters_are_ignored(make_user):
    user = make_user("xy@ab.example", name="Al Bo")

    assert refusals("al bo al bo kettle orbit", user, ContextWordsValidator()) == []


def test_context_words_of_a_person_not_yet_saved_are_used():
    person = User(email="bq@orchard.example", name="Bartholomew Quince")

    assert refusals("bartholomew-quince!", person, ContextWordsValidator()) == ["password_too_similar"]


def test_no_message_repeats_the_password(make_user):
    user = make_user("bq@orchard.example", name="Bartholomew Quince")
    refused = ["Bartholomew Quince", "Support2026!!!!!!", "aaaaaaaaaaaaaaaa", "x" * 300, "short\x00"]

    for password in refused:
        errors = messages(password, user, LengthValidator(), BlocklistValidator(), ContextWordsValidator())
        assert errors
        assert not any(password.casefold() in error.casefold() for error in errors)
        assert not any("bartholomew" in error.casefold() for error in errors)


# --- through allauth's forms ----------------------------------------------------------------

VALIDATORS = [
    {"NAME": f"strongroom.identity.passwords.{name}"}
    for name in ("LengthValidator", "BlocklistValidator", "ContextWordsValidator", "BreachedPasswordValidator")
]


def test_password_change_form_refuses_a_password_made_of_the_persons_name(agent, settings):
    settings.AUTH_PASSWORD_VALIDATORS = VALIDATORS
    chosen = "Alex Agent 2026!!!"

    response = client_for(agent).post(
        "/accounts/password/change/", {"oldpassword": PASSWORD, "password1": chosen, "password2": chosen}
    )

    assert response.status_code == 200
    assert b"Most of this password is your name" in response.content
    assert chosen.encode() not in response.content
    agent.refresh_from_db()
    assert agent.check_password(PASSWORD)


def test_password_change_form_accepts_a_passphrase(agent, settings):
    settings.AUTH_PASSWORD_VALIDATORS = VALIDATORS

    response = client_for(agent).post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "kettle orbit fjord lantern", "password2": "kettle orbit fjord lantern"},
    )

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password("kettle orbit fjord lantern")


# --- breached passwords: the file ------------------------------------------------------------


class CountingFile:
    """A binary file that counts the seeks and reads made on it."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "rb", buffering=0)
        self.seeks = 0
        self.reads = 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.seeks += 1
        return self.file.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.file.read(size)

    def close(self) -> None:
        self.file.close()


def write_hash_file(path: Path, hashes: list[str], newline: str = "\n", final_newline: bool = True) -> list[str]:
    rng = random.Random(len(hashes))
    lines = [f"{digest}:{rng.randint(1, 5_000_000)}" for digest in sorted(hashes)]
    path.write_bytes((newline.join(lines) + (newline if final_newline else "")).encode())
    return lines


@pytest.fixture(scope="module", params=["\n", "\r\n"], ids=["lf", "crlf"])
def breached_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """200,000 random SHA-1 hashes and the leaked passwords, sorted, with LF or CRLF line ends."""
    rng = random.Random(2026)
    hashes = [rng.randbytes(20).hex().upper() for _ in range(200_000)]
    hashes += [sha1(password) for password in LEAKED]
    path = tmp_path_factory.mktemp("breached") / "pwnedpasswords.txt"
    return path, write_hash_file(path, hashes, request.param)


def lookup(path: Path, digest: str) -> tuple[int, CountingFile]:
    file = CountingFile(path)
    try:
        return search_sorted_hashes(file, digest), file
    finally:
        file.close()


def test_leaked_password_is_found_with_its_count(breached_file):
    path, lines = breached_file
    expected = next(line for line in lines if line.startswith(sha1(LEAKED[0])))

    count, _ = lookup(path, sha1(LEAKED[0]))

    assert count == int(expected.split(":")[1])


def test_first_and_last_lines_are_found(breached_file):
    path, lines = breached_file

    for line in (lines[0], lines[1], lines[-2], lines[-1]):
        digest, count = line.split(":")
        assert lookup(path, digest)[0] == int(count)


@pytest.mark.parametrize("digest", ["0" * 40, "F" * 40, sha1(UNSEEN)])
def test_absent_hashes_are_not_found(breached_file, digest):
    path, _ = breached_file

    assert lookup(path, digest)[0] == 0


def test_lowercase_hash_is_looked_up_as_uppercase(breached_file):
    path, lines = breached_file
    digest, count = lines[1000].split(":")

    assert lookup(path, digest.lower())[0] == int(count)


def test_lookup_takes_a_logarithmic_number_of_reads(breached_file):
    path, lines = breached_file
    bound = math.ceil(math.log2(path.stat().st_size)) + 2  # one read per halving of the byte range
    targets = [line.split(":")[0] for line in (lines[0], lines[77_777], lines[-1])] + ["0" * 40, "F" * 40]

    files = [lookup(path, digest)[1] for digest in targets]

    assert max(file.reads for file in files) <= bound
    assert max(file.seeks for file in files) <= bound + 1  # and one to learn the size


def test_last_line_without_a_line_end_is_found(tmp_path):
    hashes = [sha1(str(n)) for n in range(1000)]
    lines = write_hash_file(tmp_path / "list.txt", hashes, "\r\n", final_newline=False)

    for line in (lines[0], lines[-1]):
        digest, count = line.split(":")
        assert lookup(tmp_path / "list.txt", digest)[0] == int(count)
    assert lookup(tmp_path / "list.txt", "F" * 40)[0] == 0


def test_a_file_of_one_line_is_searched(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(f"{sha1(LEAKED[0])}:7".encode())

    assert lookup(path, sha1(LEAKED[0]))[0] == 7
    assert lookup(path, "0" * 40)[0] == 0
    assert lookup(path, "F" * 40)[0] == 0


def test_corrupt_file_without_line_ends_refuses_every_password(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"F" * 100_000)

    assert refusals(UNSEEN, None, BreachedPasswordValidator(str(path))) == ["password_check_unavailable"]
    assert "the file is corrupt" in check_breached_file(path)


def test_padding_lines_with_a_zero_count_are_not_breaches(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(f"{sha1(LEAKED[0])}:0\n".encode())

    assert lookup(path, sha1(LEAKED[0]))[0] == 0


# --- breached passwords: the validator -------------------------------------------------------


def test_leaked_password_is_refused(breached_file):
    path, _ = breached_file

    assert messages(LEAKED[1], None, BreachedPasswordValidator(str(path))) == [
        "This password has appeared in a data breach, so attackers try it first; choose another."
    ]


def test_unseen_password_passes_the_breach_check(breached_file):
    path, _ = breached_file

    assert refusals(UNSEEN, None, BreachedPasswordValidator(str(path))) == []


def test_password_is_also_looked_up_after_nfkc_normalisation(breached_file):
    path, _ = breached_file
    typed = "\ufb01nal leaked passphrase"  # "ﬁ" is "fi" after NFKC: the listed "final leaked passphrase"

    assert refusals(typed, None, BreachedPasswordValidator(str(path))) == ["password_breached"]


def test_validator_reads_the_setting_when_given_no_path(breached_file, settings):
    path, _ = breached_file
    settings.BREACHED_PASSWORDS_FILE = str(path)

    assert refusals(LEAKED[0], None, BreachedPasswordValidator()) == ["password_breached"]


def test_no_file_configured_checks_nothing(settings):
    settings.BREACHED_PASSWORDS_FILE = ""

    assert refusals(LEAKED[0], None, BreachedPasswordValidator()) == []


def test_unreadable_file_refuses_every_password(tmp_path, caplog):
    missing = tmp_path / "gone.txt"

    assert messages(UNSEEN, None, BreachedPasswordValidator(str(missing))) == [
        "Passwords cannot be checked right now; please try again later or tell your administrator."
    ]
    assert "cannot be read" in caplog.text
    assert UNSEEN not in caplog.text


# --- breached passwords: the start-up check --------------------------------------------------


def test_sorted_file_passes_the_check(breached_file):
    path, _ = breached_file

    assert check_breached_file(path) is None


def test_no_file_configured_passes_the_check():
    assert check_breached_file("") is None
    assert check_breached_file(None) is None


def test_missing_file_fails_the_check(tmp_path):
    assert check_breached_file(tmp_path / "gone.txt") == (
        f"STRONGROOM_BREACHED_PASSWORDS_FILE={tmp_path / 'gone.txt'} is not a file (missing, or a directory); "
        "passwords cannot be checked against it."
    )


def test_directory_fails_the_check(tmp_path):
    assert "is not a file" in check_breached_file(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_fails_the_check(tmp_path):
    path = tmp_path / "list.txt"
    write_hash_file(path, [sha1(str(n)) for n in range(100)])
    path.chmod(0)

    assert "cannot be read" in check_breached_file(path)


def test_empty_file_fails_the_check(tmp_path):
    (tmp_path / "list.txt").write_bytes(b"")

    assert "is empty" in check_breached_file(tmp_path / "list.txt")


def test_file_ordered_by_prevalence_fails_the_check(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "list.txt"
    path.write_text("".join(f"{rng.randbytes(20).hex().upper()}:{100_000 - n}\n" for n in range(5000)))

    assert "is not sorted by hash" in check_breached_file(path)


def test_ntlm_file_fails_the_check(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "list.txt"
    path.write_text("".join(f"{digest}:3\n" for digest in sorted(rng.randbytes(16).hex().upper() for _ in range(500))))

    assert "is not a Pwned Passwords SHA-1 file" in check_breached_file(path)
