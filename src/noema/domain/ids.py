"""Identifiers: UUIDs for everything (made by the ``IdFactory`` port), and the short id users see."""

from __future__ import annotations

import hashlib
import uuid

from noema.domain.errors import InvalidInput


def parse_id(raw: str, *, what: str = "id") -> str:
    """A canonical UUID string, or InvalidInput naming what was expected."""
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        raise InvalidInput(f"{what} must be a UUID such as 3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59.") from None


def short_id(any_id: str) -> str:
    """The 5-hex-digit id shown to users: the start of sha256(id)."""
    return hashlib.sha256(any_id.encode()).hexdigest()[:5]
