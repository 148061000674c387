"""Where a Discord run's messages go: the interaction that asked, and its channel once the token expires.

Stored (as ``to_json``) with the generation and each of its outbox rows; the notifier and the rerun
button read it back with ``parse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from noema.adapters.platforms.discord.interactions import MAX_ATTACHMENT_BYTES, Interaction

TOKEN_LIFETIME = 15 * 60  #: seconds an interaction token can edit its messages
_MARGIN = 30.0  #: seconds before the token's end at which it is no longer relied on


@dataclass(frozen=True)
class DiscordTarget:
    """The interaction of a run (its token edits the original response), its channel and its user."""

    token: str = field(repr=False)  #: a credential for 15 minutes: kept out of reprs and tracebacks
    expires_at: float  #: Unix seconds
    application_id: str | None = None
    interaction_id: str | None = None
    channel_id: str | None = None
    guild_id: str | None = None
    user_id: str | None = None
    size_limit: int = MAX_ATTACHMENT_BYTES  #: the most one message's files may weigh in this channel
    image_url: str | None = None  #: the attachment the run was given (the rerun button fetches it again)

    @classmethod
    def of(cls, ix: Interaction) -> DiscordTarget:
        """Where news of a run asked for by this interaction goes."""
        return cls(
            token=ix.token,
            expires_at=ix.created_at + TOKEN_LIFETIME,
            application_id=ix.application_id,
            interaction_id=ix.id,
            channel_id=ix.channel_id,
            guild_id=ix.guild_id,
            user_id=ix.user_id,
            size_limit=ix.size_limit,
        )

    def with_image(self, url: str) -> DiscordTarget:
        """The same target, remembering the image the run was given."""
        return replace(self, image_url=url)

    def token_alive(self, now: float) -> bool:
        """Whether the interaction token can still edit its messages at ``now`` (with a margin)."""
        return now < self.expires_at - _MARGIN

    def to_json(self) -> dict[str, Any]:
        """As stored: every key of the interaction, the image only when there was one."""
        stored: dict[str, Any] = {
            "application_id": self.application_id,
            "interaction_id": self.interaction_id,
            "token": self.token,
            "expires_at": self.expires_at,
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "user_id": self.user_id,
            "size_limit": self.size_limit,
        }
        if self.image_url is not None:
            stored["image_url"] = self.image_url
        return stored

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> DiscordTarget | None:
        """A stored target; None when it holds no interaction token (an API client's own context, say)."""
        token = raw.get("token")
        if not isinstance(token, str) or not token:
            return None
        expires, limit = raw.get("expires_at"), raw.get("size_limit")
        return cls(
            token=token,
            expires_at=float(expires) if isinstance(expires, int | float) else 0.0,
            application_id=_text(raw.get("application_id")),
            interaction_id=_text(raw.get("interaction_id")),
            channel_id=_text(raw.get("channel_id")),
            guild_id=_text(raw.get("guild_id")),
            user_id=_text(raw.get("user_id")),
            size_limit=limit if isinstance(limit, int) and limit > 0 else MAX_ATTACHMENT_BYTES,
            image_url=_text(raw.get("image_url")),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
