"""Where a Telegram run's messages go: the chat, the command it answers, the progress message.

Stored (as ``to_json``) with the generation and each of its outbox rows; the notifier and the rerun
button read it back with ``parse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TelegramTarget:
    """The chat of a run and the messages its news attach to."""

    chat_id: int
    message_id: int | None = None  #: the command the result replies to
    progress_message_id: int | None = None  #: the acknowledgement, edited into progress and the summary
    image_file_id: str | None = None  #: the photo the run was given (the rerun buttons send it again)

    def to_json(self) -> dict[str, Any]:
        """As stored: the three message keys always, the photo only when there was one."""
        stored: dict[str, Any] = {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "progress_message_id": self.progress_message_id,
        }
        if self.image_file_id is not None:
            stored["image_file_id"] = self.image_file_id
        return stored

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> TelegramTarget | None:
        """A stored target; None when it names no Telegram chat (an API client's own context, say)."""
        chat_id = _int(raw.get("chat_id"))
        if chat_id is None:
            return None
        file_id = raw.get("image_file_id")
        return cls(
            chat_id=chat_id,
            message_id=_int(raw.get("message_id")),
            progress_message_id=_int(raw.get("progress_message_id")),
            image_file_id=file_id if isinstance(file_id, str) else None,
        )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
