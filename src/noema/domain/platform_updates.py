"""An update a chat platform delivered, by the platform's own id: it may deliver the same one again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformUpdate:
    """One delivered update (Telegram's ``update_id``): answered once, however often it arrives."""

    platform: str
    update_id: str
