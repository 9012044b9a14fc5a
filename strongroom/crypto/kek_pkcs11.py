"""The PKCS#11 KEK provider: one AES-256 key per version inside an HSM, generated there as
sensitive and non-extractable; wrapping happens inside the token. See kek.py for the API and
the wrapped format, docs/encryption.md for setting up a token."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strongroom.crypto.kek import (
    KIND_PKCS11,
    NONCE_BYTES,
    KekUnavailable,
    T,
    UnwrapError,
    _check_data_key,
    _forget_data_keys,
    _header,
    _split,
)
from strongroom.environment import ConfigError
from strongroom.errors import Conflict, NotFound

log = logging.getLogger(__name__)


# --- the PKCS#11 provider --------------------------------------------------------------------


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise ConfigError("STRONGROOM_KEK_PROVIDER=pkcs11 needs python-pkcs11: pip install 'strongroom[hsm]'") from None
    return pkcs11


class Pkcs11KekProvider:
    """KEK versions as AES-256 keys in a PKCS#11 token, labelled `PREFIX-v1`, `PREFIX-v2`, ...

    Keys are generated in the token (sensitive, non-extractable, private) and wrap data keys
    with CKM_AES_GCM inside it; the application only ever sees wrapped data keys. A key found in
    the token that is extractable or not sensitive is refused. The first use creates version 1
    when the token holds none. One session per provider, opened on first use, used under a lock
    (PKCS#11 sessions are not for concurrent use) and reopened once after a session or token error.
    """

    name = "pkcs11"

    def __init__(self, *, module: str, token_label: str, pin_file: Path, key_label: str = "strongroom-kek") -> None:
        self.module = module
        self.token_label = token_label
        self.pin_file = Path(pin_file)
        self.key_label = key_label
        self._label = re.compile(re.escape(key_label) + r"-v([1-9][0-9]{0,8})")
        self._lock = threading.RLock()
        self._session: Any = None
        self._pid = 0  # the process that opened the session
        self._keys: dict[int, Any] = {}

    # sessions ---------------------------------------------------------------------------------

    def _read_pin(self) -> str:
        path = self.pin_file
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"STRONGROOM_PKCS11_PIN_FILE={path} is readable by other users (mode {mode:o}). "
                    f"Fix it with: chmod 600 {path}"
                )
            pin = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"STRONGROOM_PKCS11_PIN_FILE={path}: cannot read it ({exc.strerror}).") from None
        if not pin:
            raise ConfigError(f"STRONGROOM_PKCS11_PIN_FILE={path} is empty: put the token's user PIN in it.")
        return pin

    def _open(self) -> Any:
        pkcs11 = _pkcs11()
        try:
            lib = pkcs11.lib(self.module)
        except Exception as exc:  # the loader raises several types; none carries a secret
            raise ConfigError(
                f"STRONGROOM_PKCS11_MODULE={self.module} cannot be loaded as a PKCS#11 library "
                f"({type(exc).__name__}). For SoftHSM2, also check that SOFTHSM2_CONF names a readable configuration."
            ) from None
        try:
            token = lib.get_token(token_label=self.token_label)
        except pkcs11.NoSuchToken:
            raise ConfigError(
                f"The HSM has no token labelled {self.token_label!r}. Check STRONGROOM_PKCS11_TOKEN_LABEL; "
                f"`pkcs11-tool --module {self.module} --list-token-slots` lists the tokens it has."
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(
                f"The HSM behind {self.module} cannot be reached ({type(exc).__name__}); "
                f"is the token {self.token_label!r} present?"
            ) from None
        try:
            return token.open(rw=True, user_pin=self._read_pin())
        except pkcs11.UserAlreadyLoggedIn:
            # PKCS#11 login belongs to the process: another session of ours already logged in.
            return token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise ConfigError(
                f"The token {self.token_label!r} refused the PIN in STRONGROOM_PKCS11_PIN_FILE={self.pin_file}. "
                "Put the token's user PIN in that file (a real HSM may lock itself after a few wrong PINs)."
            ) from None
        except pkcs11.PinLocked:
            raise ConfigError(
                f"The user PIN of token {self.token_label!r} is locked; the token's security officer must unlock it."
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(f"The token {self.token_label!r} cannot be opened ({type(exc).__name__}).") from None

    def _drop_session(self) -> None:
        session, self._session, self._keys = self._session, None, {}
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()

    def _with_session(self, operation: Callable[[Any], T]) -> T:
        """Run `operation(session)` under the lock; reopen the session once after a session or
        token error (a restarted HSM, an idle session closed by the token)."""
        pkcs11 = _pkcs11()
        lost = (
            pkcs11.SessionHandleInvalid,
            pkcs11.SessionClosed,
            pkcs11.TokenNotPresent,
            pkcs11.TokenNotRecognised,
            pkcs11.DeviceRemoved,
            pkcs11.DeviceError,
            pkcs11.UserNotLoggedIn,
            pkcs11.KeyHandleInvalid,
            pkcs11.ObjectHandleInvalid,
        )
        with self._lock:
            if self._session is not None and self._pid != os.getpid():
                # A forked child (gunicorn workers): PKCS#11 state is not fork-safe, start afresh.
                self._session, self._keys = None, {}
                with contextlib.suppress(Exception):
                    pkcs11.lib(self.module).reinitialize()
            for attempt in (1, 2):
                if self._session is None:
                    self._session, self._pid = self._open(), os.getpid()
                try:
                    return operation(self._session)
                except lost as exc:
                    self._drop_session()
                    log.warning(
                        "kek.pkcs11.session_lost token=%s error=%s attempt=%d",
                        self.token_label,
                        type(exc).__name__,
                        attempt,
                    )
            raise KekUnavailable(f"The token {self.token_label!r} cannot be used (its session was lost twice).")

    # keys -------------------------------------------------------------------------------------

    def _find_keys(self, session: Any) -> dict[int, Any]:
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        found: dict[int, Any] = {}
        for key in session.get_objects({attr.CLASS: pkcs11.ObjectClass.SECRET_KEY}):
            match = self._label.fullmatch(key[attr.LABEL] or "")
            if not match:
                continue
            version = int(match[1])
            if version in found:
                raise ConfigError(
                    f"The token {self.token_label!r} holds two keys labelled {self.key_label}-v{version}; "
                    "delete the one that wraps nothing (pkcs11-tool --delete-object ...)."
                )
            # A KEK whose value can be read or exported would defeat the HSM.
            if key[attr.KEY_TYPE] != pkcs11.KeyType.AES or key[attr.VALUE_LEN] != 32:
                raise ConfigError(f"The key {self.key_label}-v{version} on the token is not an AES-256 key.")
            if not key[attr.SENSITIVE] or key[attr.EXTRACTABLE]:
                raise ConfigError(
                    f"The key {self.key_label}-v{version} on the token is extractable or not sensitive; "
                    "Strongroom refuses it. Let Strongroom generate its keys in the token."
                )
            found[version] = key
        return found

    def _refresh(self, session: Any) -> dict[int, Any]:
        self._keys = self._find_keys(session)
        return self._keys

    def _generate(self, session: Any, version: int) -> Any:
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        label = f"{self.key_label}-v{version}"
        return session.generate_key(
            pkcs11.KeyType.AES,
            256,
            label=label,
            id=label.encode(),
            store=True,
            capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
            # Explicit: token defaults differ (python-pkcs11 leaves EXTRACTABLE to the token).
            template={attr.TOKEN: True, attr.PRIVATE: True, attr.SENSITIVE: True, attr.EXTRACTABLE: False},
        )

    def _current(self, session: Any) -> tuple[int, Any]:
        keys = self._refresh(session)
        if not keys:
            self._keys[1] = self._generate(session, 1)
            log.info("kek.version.created provider=pkcs11 token=%s version=1", self.token_label)
            keys = self._keys
        version = max(keys)
        return version, keys[version]

    @staticmethod
    def _gcm(pkcs11: Any, nonce: bytes, aad: bytes) -> dict[str, Any]:
        return {"mechanism": pkcs11.Mechanism.AES_GCM, "mechanism_param": pkcs11.GCMParams(nonce, aad, 128)}

    def close(self) -> None:
        """Close the session (the next use opens a new one)."""
        with self._lock:
            self._drop_session()

    # the provider API -------------------------------------------------------------------------

    def check(self) -> None:
        self._with_session(self._refresh)

    def versions(self) -> list[int]:
        return sorted(self._with_session(self._refresh))

    def current_version(self) -> int:
        return self._with_session(self._current)[0]

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        data_key = _check_data_key(data_key)
        pkcs11 = _pkcs11()

        def operation(session: Any) -> tuple[int, bytes]:
            version, key = self._current(session)
            header = _header(KIND_PKCS11, version)
            nonce = os.urandom(NONCE_BYTES)  # fresh random 96-bit IV per wrap, never reused
            body = key.encrypt(data_key, **self._gcm(pkcs11, nonce, header + bytes(aad)))
            return version, header + nonce + bytes(body)

        return self._with_session(operation)

    def unwrap(self, wrapped: bytes, *, version: int, aad: bytes) -> bytes:
        header, nonce, body = _split(wrapped, kind=KIND_PKCS11, version=version)
        pkcs11 = _pkcs11()

        def operation(session: Any) -> bytes:
            key = self._keys.get(version) or self._refresh(session).get(version)
            if key is None:
                raise UnwrapError("the key-encryption key version is unknown or retired")
            try:
                return bytes(key.decrypt(body, **self._gcm(pkcs11, nonce, header + bytes(aad))))
            except (pkcs11.GeneralError, pkcs11.EncryptedDataInvalid, pkcs11.EncryptedDataLenRange, pkcs11.DataInvalid):
                # SoftHSM reports a failed GCM tag as CKR_GENERAL_ERROR.
                raise UnwrapError("wrapped data key was altered or belongs to another place") from None

        return self._with_session(operation)

    def create_version(self) -> int:
        def operation(session: Any) -> int:
            version = self._current(session)[0] + 1  # version 1 first, as with the key file
            self._keys[version] = self._generate(session, version)
            return version

        version = self._with_session(operation)
        _forget_data_keys(self)
        log.info("kek.version.created provider=pkcs11 token=%s version=%d", self.token_label, version)
        return version

    def retire_version(self, version: int) -> None:
        def operation(session: Any) -> None:
            keys = self._refresh(session)
            if version not in keys:
                raise NotFound(f"There is no key-encryption key version {version} to retire.")
            if version == max(keys):
                raise Conflict(f"Version {version} is the current key-encryption key; create a new version first.")
            keys.pop(version).destroy()

        self._with_session(operation)
        _forget_data_keys(self)
        log.info("kek.version.retired provider=pkcs11 token=%s version=%d", self.token_label, version)
