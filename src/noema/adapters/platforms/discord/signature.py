"""Checking that an interaction really comes from Discord: Ed25519 over ``timestamp + body``.

Discord signs every POST to the interactions endpoint with the application's key; the public key
(hex) is a setting. A request that does not verify, or whose timestamp is more than five minutes
off (a replay), is refused with 401 before its body is even parsed.
"""

from __future__ import annotations

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

MAX_SKEW_SECONDS = 300


class SignatureCheck:
    """Verifies interaction signatures with one application's public key."""

    def __init__(self, public_key_hex: str) -> None:
        self._key = VerifyKey(bytes.fromhex(public_key_hex))

    def verify(self, body: bytes, signature: str | None, timestamp: str | None, *, now: float) -> bool:
        """Whether ``signature`` (hex) signs ``timestamp + body`` and the timestamp is fresh."""
        if not signature or not timestamp or len(signature) != 128 or len(timestamp) > 20:
            return False
        if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
            return False
        try:
            self._key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        except (BadSignatureError, ValueError):
            return False
        return True
