"""A software WebAuthn authenticator for tests that run without a browser.

It answers the server's options the way a browser's navigator.credentials.create() and .get()
do (their JSON, attestation format "none", an ES256 key), so the server side (allauth over
python-fido2, and Strongroom's rules around it) is exercised for real, on every database. The
browser journeys (tests/e2e/test_mfa_journey.py) use Chromium's virtual authenticator instead.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData


def _b64(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else websafe_decode(value)


class SoftKey:
    def __init__(self, rp_id: str = "localhost") -> None:
        self.rp_id = rp_id
        self.origin = f"http://{rp_id}"
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.user_handle = b""
        self.sign_count = 0

    @property
    def id(self) -> str:
        return websafe_encode(self.credential_id)

    def _auth_data(self, *, user_verified: bool, credential: bytes = b"") -> AuthenticatorData:
        flags = AuthenticatorData.FLAG.UP
        if user_verified:
            flags |= AuthenticatorData.FLAG.UV
        if credential:
            flags |= AuthenticatorData.FLAG.AT
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        return AuthenticatorData.create(rp_hash, flags, self.sign_count, credential)

    def register(
        self, challenge: str | bytes, *, user_handle: bytes, resident: bool = True, user_verified: bool = True
    ) -> dict[str, Any]:
        """The JSON of a new credential for `challenge`."""
        self.user_handle = user_handle
        public_key = ES256.from_cryptography_key(self.private_key.public_key())
        credential = AttestedCredentialData.create(b"\0" * 16, self.credential_id, public_key)
        attestation = AttestationObject.create(
            "none", self._auth_data(user_verified=user_verified, credential=credential), {}
        )
        client_data = CollectedClientData.create("webauthn.create", _b64(challenge), self.origin)
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {"clientDataJSON": client_data.b64, "attestationObject": websafe_encode(attestation)},
            "clientExtensionResults": {"credProps": {"rk": resident}},
        }

    def register_for(self, creation_options: dict[str, Any], *, resident: bool = True) -> dict[str, Any]:
        """Answer the server's creation options (as the page hands them to the browser)."""
        public_key = creation_options["publicKey"]
        return self.register(public_key["challenge"], user_handle=_b64(public_key["user"]["id"]), resident=resident)

    def assertion_for(self, request_options: dict[str, Any], *, user_verified: bool = True) -> dict[str, Any]:
        """Sign the server's challenge, as navigator.credentials.get() returns it."""
        self.sign_count += 1
        auth_data = self._auth_data(user_verified=user_verified)
        client_data = CollectedClientData.create(
            "webauthn.get", _b64(request_options["publicKey"]["challenge"]), self.origin
        )
        signature = self.private_key.sign(bytes(auth_data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": client_data.b64,
            "authenticatorData": websafe_encode(auth_data),
            "signature": websafe_encode(signature),
        }
        if self.user_handle:
            response["userHandle"] = websafe_encode(self.user_handle)
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
        }
