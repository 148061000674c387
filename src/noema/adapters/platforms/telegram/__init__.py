"""Telegram: commands, live progress and results through python-telegram-bot."""

from noema.adapters.platforms.telegram.bot import WEBHOOK_PATH, TelegramPlatform

__all__ = ["WEBHOOK_PATH", "TelegramPlatform"]
