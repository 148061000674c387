"""Telegram's Stars payments API for what Noema starts itself: refundStarPayment."""

from __future__ import annotations

from telegram import Bot
from telegram.error import TelegramError

from noema.domain.errors import ExternalServiceError


class StarsRefundFailed(ExternalServiceError):
    """Telegram did not refund the Stars payment; nothing was taken back."""

    code = "PAYMENT_PROVIDER_ERROR"


class TelegramStarsGateway:
    """Refunds through the Bot API (a short-lived Bot, so it works from the CLI too)."""

    def __init__(self, *, token: str, api_root: str) -> None:
        self._token, self._root = token, api_root

    async def refund(self, *, user_id: int, charge_id: str) -> None:
        """refundStarPayment; a refusal becomes StarsRefundFailed with Telegram's description (no token)."""
        try:
            async with Bot(self._token, base_url=f"{self._root}/bot") as bot:
                await bot.refund_star_payment(user_id, charge_id)
        except TelegramError as exc:
            raise StarsRefundFailed(f"Telegram refused the refund: {str(exc)[:200]}") from None
