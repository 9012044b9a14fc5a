"""Key-encryption key providers: a data key wrapped under a KEK version opens only under that
version, in its place, untouched; versions rotate and retire; nothing unwrapped leaks.

The PKCS#11 provider runs against a real SoftHSM2 token (the `softhsm` fixture)."""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.crypto import kek, keyfile, open_sealed, primitives, random_token, seal
from strongroom.crypto.kek import (
    WRAPPED_BYTES,
    DataKeyCache,
    UnwrapError,
    cached_unwrap,
    kek_provider,
)
from strongroom.crypto.kek_file import FileKekProvider
from strongroom.crypto.kek_pkcs11 import Pkcs11KekProvider
from strongroom.environment import ConfigError
from strongroom.errors import Conflict, NotFound
from tests.cli.test_configuration import run
from tests.services.softhsm import SoftHsm

AAD = b"inboxes.contact:42:data-key"


def data_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "kek.key"
    keyfile.create_key_file(path)
    return path


@pytest.fixture
def file_provider(key_file: Path) -> FileKekProvider:
    return FileKekProvider(key_file)


@pytest.fixture
def pkcs11_provider(softhsm: SoftHsm) -> Iterator[Pkcs11KekProvider]:
    """A provider on the test token with a key label of its own, so tests never share versions."""
    provider = Pkcs11KekProvider(
        module=softhsm.module,
        token_label=softhsm.token_label,
        pin_file=softhsm.pin_file,
        key_label=f"t-{random_token(8)}-kek",
    )
    yield provider
    provider.close()


@pytest.fixture(params=["file", "pkcs11"])
def provider(request: pytest.FixtureRequest) -> kek.KekProvider:
    return request.getfixturevalue(f"{request.param}_provider")


def flipped(blob: bytes, index: int) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= 0x01
    return bytes(changed)


# --- both providers ------------------------------------------------------------------------------


def test_wrapped_data_key_unwraps_with_the_same_aad_and_version(provider):
    key = data_key()

    version, wrapped = provider.wrap(key, aad=AAD)

    assert version == 1
    assert provider.unwrap(wrapped, version=version, aad=AAD) == key
    assert key not in wrapped
    assert len(wrapped) == WRAPPED_BYTES
    assert wrapped[0] == 1 and int.from_bytes(wrapped[2:6], "big") == 1


def test_wrapping_twice_gives_different_blobs(provider):
    key = data_key()

    assert provider.wrap(key, aad=AAD)[1] != provider.wrap(key, aad=AAD)[1]


def test_wrapped_key_moved_to_another_contact_is_refused(provider):
    version, wrapped = provider.wrap(data_key(), aad=b"inboxes.contact:1:data-key")

    with pytest.raises(UnwrapError, match="altered or belongs to another place"):
        provider.unwrap(wrapped, version=version, aad=b"inboxes.contact:2:data-key")


@pytest.mark.parametrize("index", [0, 1, 5, 6, 17, 30, WRAPPED_BYTES - 1], ids=lambda i: f"byte{i}")
def test_a_flipped_byte_anywhere_is_refused(provider, index):
    version, wrapped = provider.wrap(data_key(), aad=AAD)

    with pytest.raises(UnwrapError):
        provider.unwrap(flipped(wrapped, index), version=version, aad=AAD)


def test_a_truncated_blob_is_refused(provider):
    version, wrapped = provider.wrap(data_key(), aad=AAD)

    with pytest.raises(UnwrapError, match="known format"):
        provider.unwrap(wrapped[:-1], version=version, aad=AAD)


def test_unwrapping_under_another_version_than_the_blobs_is_refused(provider):
    provider.create_version()
    version, wrapped = provider.wrap(data_key(), aad=AAD)

    with pytest.raises(UnwrapError, match="another key-encryption key version"):
        provider.unwrap(wrapped, version=1, aad=AAD)
    assert version == 2


def test_a_blob_claiming_an_unknown_version_is_refused(provider):
    _, wrapped = provider.wrap(data_key(), aad=AAD)
    claims_seven = wrapped[:2] + (7).to_bytes(4, "big") + wrapped[6:]

    with pytest.raises(UnwrapError, match="unknown or retired"):
        provider.unwrap(claims_seven, version=7, aad=AAD)


def test_a_data_key_of_the_wrong_length_is_not_wrapped(provider):
    with pytest.raises(ValueError, match="32 bytes"):
        provider.wrap(b"short", aad=AAD)


def test_new_version_becomes_current_and_old_wrapped_keys_still_unwrap(provider):
    old_key = data_key()
    old_version, old_wrapped = provider.wrap(old_key, aad=AAD)

    created = provider.create_version()
    new_version, new_wrapped = provider.wrap(data_key(), aad=AAD)

    assert created == 2 and new_version == 2 and old_version == 1
    assert provider.current_version() == 2
    assert provider.versions() == [1, 2]
    assert provider.unwrap(old_wrapped, version=1, aad=AAD) == old_key


def test_retired_version_no_longer_unwraps(provider):
    _, wrapped = provider.wrap(data_key(), aad=AAD)
    provider.create_version()

    provider.retire_version(1)

    assert provider.versions() == [2]
    with pytest.raises(UnwrapError, match="unknown or retired"):
        provider.unwrap(wrapped, version=1, aad=AAD)


def test_retiring_the_current_version_is_refused(provider):
    provider.create_version()
    _, wrapped = provider.wrap(data_key(), aad=AAD)

    with pytest.raises(Conflict, match="current key-encryption key"):
        provider.retire_version(2)

    assert provider.versions() == [1, 2]
    assert provider.unwrap(wrapped, version=2, aad=AAD)


def test_retiring_an_unknown_version_is_refused(provider):
    provider.current_version()

    with pytest.raises(NotFound):
        provider.retire_version(5)


def test_version_numbers_are_never_reused_after_a_retirement(provider):
    provider.create_version()
    provider.create_version()
    provider.retire_version(2)

    assert provider.create_version() == 4
    assert provider.versions() == [1, 3, 4]


def test_cached_unwrap_serves_the_key_until_its_version_is_retired(provider):
    key = data_key()
    version, wrapped = provider.wrap(key, aad=AAD)

    first = cached_unwrap(wrapped, version=version, aad=AAD, provider=provider)
    second = cached_unwrap(wrapped, version=version, aad=AAD, provider=provider)
    provider.create_version()
    provider.retire_version(1)

    assert first == second == key
    with pytest.raises(UnwrapError):
        cached_unwrap(wrapped, version=version, aad=AAD, provider=provider)
    with pytest.raises(UnwrapError):
        cached_unwrap(wrapped, version=version, aad=b"another place", provider=provider)


def test_nothing_unwrapped_reaches_the_logs_or_error_messages(provider, caplog):
    caplog.set_level(logging.DEBUG, logger="strongroom")
    key = data_key()
    messages = []

    version, wrapped = provider.wrap(key, aad=AAD)
    cached_unwrap(wrapped, version=version, aad=AAD, provider=provider)
    provider.create_version()
    for bad in (flipped(wrapped, 20), wrapped[:10]):
        with pytest.raises(UnwrapError) as refused:
            provider.unwrap(bad, version=version, aad=AAD)
        messages.append(str(refused.value))
    provider.retire_version(1)

    text = caplog.text + "\n".join(messages)
    assert "kek.version.created" in caplog.text and "kek.version.retired" in caplog.text
    for form in (key.hex(), key.hex().upper(), base64.b64encode(key).decode(), repr(key)[2:-1]):
        assert form not in text


def test_concurrent_wraps_and_unwraps_all_succeed(provider):
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                key = data_key()
                version, wrapped = provider.wrap(key, aad=AAD)
                assert provider.unwrap(wrapped, version=version, aad=AAD) == key
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []


# --- the data key cache --------------------------------------------------------------------------


def test_cached_data_keys_expire_and_the_cache_stays_bounded():
    now = [1000.0]
    cache = DataKeyCache(ttl_seconds=300, max_entries=3, clock=lambda: now[0])

    for n in range(5):
        cache.put((1, b"aad", bytes([n])), bytes([n]) * 32)
    held = [cache.get((1, b"aad", bytes([n]))) for n in range(5)]
    now[0] += 301
    expired = cache.get((1, b"aad", b"\x04"))

    assert held[:2] == [None, None] and held[2:] == [b"\x02" * 32, b"\x03" * 32, b"\x04" * 32]
    assert expired is None


# --- the file provider ---------------------------------------------------------------------------


def test_new_versions_leave_the_key_file_byte_identical_and_files_private(key_file, file_provider):
    before = key_file.read_bytes()

    file_provider.create_version()
    file_provider.create_version()
    file_provider.retire_version(1)

    assert key_file.read_bytes() == before
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert file_provider.versions_file.stat().st_mode & 0o777 == 0o600
    assert Path(f"{file_provider.versions_file}.lock").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in key_file.parent.iterdir() if p.name.startswith(".kek-versions-")] == []


def test_retiring_version_one_keeps_sealed_settings_readable(key_file, file_provider, settings):
    settings.KEK_FILE = key_file
    primitives._derived_key.cache_clear()
    sealed = seal(b"imap password", purpose="mail-password", context=b"inboxes.inbox:1:imap")
    file_provider.create_version()

    file_provider.retire_version(1)

    assert open_sealed(sealed, purpose="mail-password", context=b"inboxes.inbox:1:imap") == b"imap password"


def test_versions_file_format_is_documented_text(file_provider):
    version = file_provider.create_version()
    file_provider.retire_version(1)

    lines = file_provider.versions_file.read_text().splitlines()

    assert lines[0] == "strongroom-kek-versions 1"
    assert lines[1].startswith(f"key {version} ") and len(base64.b64decode(lines[1].split()[2])) == 32
    assert lines[2] == "retired 1"


def test_a_version_created_by_another_process_is_seen(key_file, file_provider):
    other = FileKekProvider(key_file)  # stands for another process sharing the files
    file_provider.current_version()

    other.create_version()
    version, wrapped = file_provider.wrap(data_key(), aad=AAD)

    assert version == 2
    assert other.unwrap(wrapped, version=2, aad=AAD)


def test_versions_file_readable_by_others_is_refused(file_provider):
    file_provider.create_version()
    file_provider.versions_file.chmod(0o644)

    with pytest.raises(ConfigError, match="chmod 600"):
        file_provider.check()


def test_malformed_versions_file_is_refused(file_provider):
    file_provider.versions_file.write_text("strongroom-kek-versions 1\nkey 2 not-base64!!\n")
    file_provider.versions_file.chmod(0o600)

    with pytest.raises(ConfigError, match="not a Strongroom key versions file"):
        file_provider.versions()


def test_configured_provider_is_the_key_file_by_default_and_cached(settings, key_file):
    settings.KEK_FILE = key_file

    first = kek_provider()

    assert isinstance(first, FileKekProvider) and first.key_file == key_file
    assert kek_provider() is first


# --- the PKCS#11 provider -------------------------------------------------------------------------


def token_key(softhsm: SoftHsm, label: str):
    """The key object as another session of this process sees it (login is per process, so a
    session without PIN sees private objects while the provider's session is logged in)."""
    import pkcs11

    session = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.token_label).open()
    return session, session.get_key(label=label, object_class=pkcs11.ObjectClass.SECRET_KEY)


def test_hsm_keys_are_generated_in_the_token_sensitive_and_not_extractable(softhsm, pkcs11_provider):
    import pkcs11
    from pkcs11 import Attribute

    pkcs11_provider.wrap(data_key(), aad=AAD)
    session, key = token_key(softhsm, f"{pkcs11_provider.key_label}-v1")

    try:
        assert key[Attribute.SENSITIVE] and key[Attribute.ALWAYS_SENSITIVE]
        assert not key[Attribute.EXTRACTABLE] and key[Attribute.NEVER_EXTRACTABLE]
        assert key[Attribute.LOCAL] and key[Attribute.TOKEN] and key[Attribute.PRIVATE]
        assert key[Attribute.VALUE_LEN] == 32
        with pytest.raises(pkcs11.AttributeSensitive):
            key[Attribute.VALUE]
    finally:
        session.close()


def test_an_extractable_key_under_our_label_is_refused(softhsm, pkcs11_provider):
    import pkcs11
    from pkcs11 import Attribute

    pkcs11_provider.check()  # logs the process in
    session = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.token_label).open(rw=True)
    session.generate_key(
        pkcs11.KeyType.AES,
        256,
        label=f"{pkcs11_provider.key_label}-v1",
        store=True,
        template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
    )
    session.close()

    with pytest.raises(ConfigError, match="extractable or not sensitive"):
        pkcs11_provider.versions()


def test_hsm_session_is_reopened_after_it_was_lost(pkcs11_provider):
    key = data_key()
    version, wrapped = pkcs11_provider.wrap(key, aad=AAD)

    pkcs11_provider._session.close()  # as if the HSM had dropped it

    assert pkcs11_provider.unwrap(wrapped, version=version, aad=AAD) == key


def test_an_unknown_token_label_is_a_configuration_error(softhsm):
    provider = Pkcs11KekProvider(
        module=softhsm.module, token_label="no-such-token", pin_file=softhsm.pin_file, key_label="x"
    )

    with pytest.raises(ConfigError, match="no token labelled 'no-such-token'.*STRONGROOM_PKCS11_TOKEN_LABEL"):
        provider.check()


def test_a_module_that_is_not_pkcs11_is_a_configuration_error(softhsm, tmp_path):
    not_a_library = tmp_path / "libnothing.so"
    not_a_library.write_bytes(b"not a shared object")
    provider = Pkcs11KekProvider(module=str(not_a_library), token_label="t", pin_file=softhsm.pin_file)

    with pytest.raises(ConfigError, match="STRONGROOM_PKCS11_MODULE=.*cannot be loaded"):
        provider.check()


# --- start-up with each provider (the `strongroom` command in a process of its own) ---------------


def hsm_settings(softhsm: SoftHsm, **overrides: str) -> dict[str, str]:
    return {
        "STRONGROOM_KEK_PROVIDER": "pkcs11",
        "STRONGROOM_PKCS11_MODULE": softhsm.module,
        "STRONGROOM_PKCS11_TOKEN_LABEL": softhsm.token_label,
        "STRONGROOM_PKCS11_PIN_FILE": str(softhsm.pin_file),
        "STRONGROOM_PKCS11_KEY_LABEL": f"t-{random_token(8)}-kek",
        **overrides,
    }


def test_unknown_kek_provider_stops_start_up_naming_the_choices(tmp_path):
    outcome = run(tmp_path / "data", "user", "list", STRONGROOM_KEK_PROVIDER="vault")

    assert outcome.status == 2
    assert "STRONGROOM_KEK_PROVIDER='vault' is not one of: file, pkcs11" in outcome.err


def test_a_pin_in_the_environment_stops_start_up(tmp_path):
    outcome = run(tmp_path / "data", "user", "list", STRONGROOM_PKCS11_PIN="1234")

    assert outcome.status == 2
    assert "STRONGROOM_PKCS11_PIN_FILE" in outcome.err and "1234" not in outcome.err


def test_hsm_provider_starts_with_the_right_token_and_pin(softhsm, tmp_path):
    outcome = run(tmp_path / "data", "user", "list", **hsm_settings(softhsm))

    assert outcome.status == 0, outcome.err


def test_a_wrong_pin_stops_start_up_without_showing_either_pin(softhsm, tmp_path):
    wrong = SoftHsm.write_pin_file(tmp_path / "wrong-pin", "not-the-user-pin-9999")

    outcome = run(tmp_path / "data", "user", "list", **hsm_settings(softhsm, STRONGROOM_PKCS11_PIN_FILE=str(wrong)))

    assert outcome.status == 2
    assert "strongroom.E006" in outcome.err
    assert f"refused the PIN in STRONGROOM_PKCS11_PIN_FILE={wrong}" in outcome.err
    assert "not-the-user-pin-9999" not in outcome.err and "strongroom-user-pin" not in outcome.err


def test_an_unreachable_token_stops_start_up(softhsm, tmp_path):
    outcome = run(tmp_path / "data", "user", "list", **hsm_settings(softhsm, STRONGROOM_PKCS11_TOKEN_LABEL="gone"))

    assert outcome.status == 2
    assert "strongroom.E006" in outcome.err and "no token labelled 'gone'" in outcome.err


def test_a_pin_file_readable_by_others_stops_start_up(softhsm, tmp_path):
    shared = SoftHsm.write_pin_file(tmp_path / "shared-pin", "whatever")
    shared.chmod(0o644)

    outcome = run(tmp_path / "data", "user", "list", **hsm_settings(softhsm, STRONGROOM_PKCS11_PIN_FILE=str(shared)))

    assert outcome.status == 2
    assert f"chmod 600 {shared}" in outcome.err
