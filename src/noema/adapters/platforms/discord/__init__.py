"""Discord: slash commands over the HTTP interactions endpoint, deferred replies, results via the outbox."""

from noema.adapters.platforms.discord.bot import WEBHOOK_PATH, DiscordPlatform

__all__ = ["WEBHOOK_PATH", "DiscordPlatform"]
