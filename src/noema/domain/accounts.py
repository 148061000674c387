"""Accounts, platform identities, personal API keys: who someone is across platforms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from noema.domain.errors import InvalidInput


class Platform(str, Enum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    WEB = "web"
    API = "api"


class AccountStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED_BY_USER = "deactivated_by_user"
    DEACTIVATED_BY_ADMIN = "deactivated_by_admin"


_PLATFORM_ID = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}$")


def parse_platform(raw: str) -> Platform:
    """The platform named by ``raw``, or InvalidInput listing the known ones."""
    try:
        return Platform(raw)
    except ValueError:
        known = ", ".join(p.value for p in Platform)
        raise InvalidInput(f"Unknown platform {raw[:40]!r}; use one of: {known}.") from None


def parse_platform_id(raw: str) -> str:
    """A platform's user id: 1-128 characters of letters, digits and ``_.:@-``."""
    if not _PLATFORM_ID.match(raw):
        raise InvalidInput("A platformId is 1-128 letters, digits or the characters _ . : @ -.")
    return raw


@dataclass(eq=False)
class Account:
    """One person across every platform: profile, status and wallet."""

    id: str
    created_at: datetime
    updated_at: datetime
    status: AccountStatus = AccountStatus.ACTIVE
    display_name: str | None = None
    username: str | None = None
    last_seen_platform: str | None = None
    balance_nanos: int = 0
    held_nanos: int = 0
    #: credit taken back by a refund or dispute that the balance did not cover; paid first by the next credit
    owed_nanos: int = 0
    exp: int = 0
    wallet_address: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    merged_into: str | None = None

    @property
    def free_nanos(self) -> int:
        """What can still be spent or held: the balance less open holds."""
        return self.balance_nanos - self.held_nanos


@dataclass(eq=False)
class Identity:
    """A (platform, platformId) pair that belongs to one account."""

    id: str
    account_id: str
    platform: Platform
    platform_id: str
    created_at: datetime
    context: dict[str, Any] = field(default_factory=dict)


API_KEY_PREFIX = "nk_"


@dataclass(eq=False)
class ApiKey:
    """A personal API key, kept only as a hash; ``prefix`` lets a user tell keys apart."""

    id: str
    account_id: str
    prefix: str
    key_hash: str
    created_at: datetime
    name: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        """A key works until it is revoked."""
        return self.revoked_at is None
