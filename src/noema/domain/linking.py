"""One-time codes: link a chat identity to another account, or sign in to the web page from a chat."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from noema.domain.errors import InvalidInput

CODE_LIFETIME = timedelta(minutes=10)
#: No 0/O, 1/I/L: a code is read off one screen and typed into another.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


#: who asked for a code when it was the account itself (its own chat identity or web session)
SELF = "self"
#: how long a wrong link code counts against the guesser and against everyone
GUESS_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class GuessLimits:
    """How many wrong link codes are let through in ``GUESS_WINDOW``: per guessing account, and overall."""

    per_account: int = 5
    overall: int = 200


def retry_after(failures: list[datetime], limit: int, now: datetime) -> int | None:
    """Seconds until fewer than ``limit`` of these failures (oldest first) fall in the window; None: go ahead."""
    if len(failures) < limit:
        return None
    must_expire = failures[len(failures) - limit]
    return max(1, math.ceil((must_expire + GUESS_WINDOW - now).total_seconds()))


class CodePurpose(str, Enum):
    LINK = "link"  #: enter it on another platform to merge the two accounts
    SIGN_IN = "sign_in"  #: open the link to sign in to the web page


def normalise_code(raw: str) -> str:
    """What the user typed, as stored: upper case, without spaces or dashes."""
    code = raw.strip().upper().replace("-", "").replace(" ", "")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise InvalidInput(f"A link code is {CODE_LENGTH} letters and digits, like K7PQ-2MXD.")
    return code


@dataclass(eq=False)
class LinkCode:
    """A one-time code, stored as a hash."""

    code_hash: str
    account_id: str
    purpose: CodePurpose
    created_at: datetime
    expires_at: datetime
    platform: str | None = None
    used_at: datetime | None = None
    issued_by: str | None = None  #: SELF, or the internal client that asked on the account's behalf

    @property
    def from_the_account(self) -> bool:
        """Asked for by the account itself or by the operator (admin), not by a platform client for it."""
        return self.issued_by in (None, SELF, "admin")

    def usable(self, now: datetime) -> bool:
        """Not used and not expired."""
        return self.used_at is None and now < self.expires_at


@dataclass(eq=False)
class WebSession:
    """A signed-in browser: the cookie holds the token, the database its hash and the CSRF token."""

    token_hash: str
    account_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        """Not signed out and not expired."""
        return self.revoked_at is None and now < self.expires_at
