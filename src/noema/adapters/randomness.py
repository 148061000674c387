"""The Secrets of a running Noema: Python's ``secrets`` module, the OS's cryptographic randomness."""

from __future__ import annotations

import secrets


class SystemSecrets:
    """Tokens, codes and seeds from ``secrets``: unpredictable, never repeated in practice."""

    def token(self, nbytes: int) -> str:
        """``nbytes`` random bytes as URL-safe base64 text (about 1.3 characters a byte)."""
        return secrets.token_urlsafe(nbytes)

    def token_hex(self, nbytes: int) -> str:
        """``nbytes`` random bytes as lowercase hex (two characters a byte)."""
        return secrets.token_hex(nbytes)

    def code(self, alphabet: str, length: int) -> str:
        """``length`` characters, each drawn uniformly from ``alphabet``."""
        return "".join(secrets.choice(alphabet) for _ in range(length))

    def randbits(self, k: int) -> int:
        """A random non-negative integer of at most ``k`` bits."""
        return secrets.randbits(k)
