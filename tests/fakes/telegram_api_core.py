"""Wire level of the fake Telegram Bot API: errors, recorded calls and reading a request's parameters.

Telegram takes parameters from the query string, a JSON body, a form-urlencoded body or a
multipart body. In the last two every value is text, so fields Telegram reads as JSON
(``reply_markup``, ``reply_parameters``, ``media``, ``commands``, ``prices`` …) are decoded here, and integer
and boolean fields are converted, so that recorded parameters look the same whichever encoding
the client chose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from starlette.datastructures import UploadFile
from starlette.requests import Request

JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "media",
        "commands",
        "entities",
        "caption_entities",
        "scope",
        "allowed_updates",
        "link_preview_options",
        "reaction",
        "suggested_post_parameters",
        "prices",
        "suggested_tip_amounts",
    }
)
INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "duration",
        "width",
        "height",
        "max_connections",
        "cache_time",
        "direct_messages_topic_id",
        "start_timestamp",
    }
)
BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "drop_pending_updates",
        "show_alert",
        "is_big",
        "has_spoiler",
        "supports_streaming",
        "show_caption_above_media",
        "disable_content_type_detection",
        "disable_web_page_preview",
        "allow_paid_broadcast",
    }
)
_JSON_ERRORS = {
    "reply_markup": "can't parse reply keyboard markup JSON object",
    "reply_parameters": "can't parse reply parameters JSON object",
    "media": "can't parse media JSON object",
    "reaction": "can't parse reaction types JSON object",
}
_INT_RE = re.compile(r"-?\d+")


class UploadedFile(NamedTuple):
    """One file part of a multipart request."""

    filename: str
    content: bytes
    content_type: str


class BotApiError(Exception):
    """A Bot API refusal: answered as ``{"ok": false, "error_code", "description"[, "parameters"]}``."""

    def __init__(self, error_code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram answers with."""
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> BotApiError:
    """A 400 with Telegram's ``Bad Request: `` prefix."""
    return BotApiError(400, f"Bad Request: {reason}")


def flood_error(retry_after: int) -> BotApiError:
    """A 429 exactly as Telegram words it."""
    return BotApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


@dataclass
class ApiResult:
    """A successful answer that also carries Telegram's optional ``description`` (setWebhook does)."""

    result: Any
    description: str | None = None


@dataclass
class RecordedCall:
    """One request to a bot method, as the fake understood it, and what it answered."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    time: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the fake answered ``ok: true``."""
        return self.status == 200

    @property
    def result(self) -> Any:
        """The ``result`` of a successful answer."""
        return self.response.get("result")


async def read_request(request: Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters (decoded as Telegram reads them) and uploaded files of a bot method request."""
    raw: dict[str, Any] = dict(request.query_params)
    files: dict[str, UploadedFile] = {}
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith("application/json"):
        body = await request.body()
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON encoded request") from None
            if not isinstance(data, dict):
                raise bad_request("can't parse JSON encoded request")
            raw.update(data)
    elif request.method == "POST" and content_type.startswith(
        ("multipart/form-data", "application/x-www-form-urlencoded")
    ):
        async with request.form(max_part_size=16 * 1024 * 1024) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    content_type_of = value.content_type or "application/octet-stream"
                    files[key] = UploadedFile(value.filename or key, await value.read(), content_type_of)
                else:
                    raw[key] = value
    return {key: _decode(key, value) for key, value in raw.items()}, files


def _decode(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(_JSON_ERRORS.get(name, f"can't parse {name} JSON object")) from None
    if name in INT_FIELDS and _INT_RE.fullmatch(value):
        return int(value)
    if name in BOOL_FIELDS and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return value


def chat_id_of(params: dict[str, Any]) -> int:
    """The integer ``chat_id``; ``@username`` targets are unknown to the fake."""
    value = params.get("chat_id")
    if value is None or value == "":
        raise bad_request("chat_id is empty")
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request("chat not found")
    return value


def int_param(params: dict[str, Any], name: str, *, missing: str) -> int:
    """A required integer parameter; ``missing`` is Telegram's description when it is absent or not a number."""
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(missing)
    return value
