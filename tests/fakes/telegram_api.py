"""A local fake of the Telegram Bot API server for tests.

``FakeTelegram().app`` is a Starlette app laid out as ``api.telegram.org``:
``/bot<token>/<method>`` (GET or POST, parameters as query string, JSON, form or multipart) and
``/file/bot<token>/<file_path>``. ``await fake.serve()`` runs it over real HTTP for clients that make
their own connections (python-telegram-bot: ``fake.bot()``). Tests act as users with
``user_message``/``callback_query``, inject failures with ``fail_next``, and inspect ``calls``,
``sent_to(chat_id)`` and ``state``.
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Bot

from tests.fakes import telegram_api_bot as bot_methods
from tests.fakes import telegram_api_media as media_methods
from tests.fakes import telegram_api_messages as message_methods
from tests.fakes import telegram_api_payments as payment_methods
from tests.fakes import telegram_api_users as users
from tests.fakes.telegram_api_core import ApiResult, BotApiError, RecordedCall, UploadedFile, read_request
from tests.fakes.telegram_api_server import ThreadedServer
from tests.fakes.telegram_api_state import BotState, SentMessage

DEFAULT_TOKEN = "123456:TEST-token-abcdefghijklmnop"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

METHODS: dict[str, Callable[..., Any]] = {
    "getMe": bot_methods.get_me,
    "setWebhook": bot_methods.set_webhook,
    "deleteWebhook": bot_methods.delete_webhook,
    "getWebhookInfo": bot_methods.get_webhook_info,
    "getUpdates": bot_methods.get_updates,
    "setMyCommands": bot_methods.set_my_commands,
    "getMyCommands": bot_methods.get_my_commands,
    "deleteMyCommands": bot_methods.delete_my_commands,
    "sendMessage": message_methods.send_message,
    "editMessageText": message_methods.edit_message_text,
    "editMessageCaption": message_methods.edit_message_caption,
    "editMessageReplyMarkup": message_methods.edit_message_reply_markup,
    "deleteMessage": message_methods.delete_message,
    "sendChatAction": message_methods.send_chat_action,
    "setMessageReaction": message_methods.set_message_reaction,
    "answerCallbackQuery": message_methods.answer_callback_query,
    "sendPhoto": media_methods.send_photo,
    "sendDocument": media_methods.send_document,
    "sendAnimation": media_methods.send_animation,
    "sendVideo": media_methods.send_video,
    "sendMediaGroup": media_methods.send_media_group,
    "getFile": media_methods.get_file,
    "sendInvoice": payment_methods.send_invoice,
    "answerPreCheckoutQuery": payment_methods.answer_pre_checkout_query,
    "refundStarPayment": payment_methods.refund_star_payment,
}
_CANONICAL = {name.lower(): name for name in METHODS}  # Telegram's method names are case-insensitive


class FakeTelegram:
    """One bot on a fake Bot API server. Thread-safe: the HTTP server may run in another thread."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "noema_test_bot",
        *,
        long_poll_cap: float = 1.0,
    ) -> None:
        self.token = token
        self.state = BotState(token, bot_username, long_poll_cap=long_poll_cap)
        self.calls: list[RecordedCall] = []
        self._faults: dict[str, deque[BotApiError]] = {}
        self._server: ThreadedServer | None = None
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._method_endpoint, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self._file_endpoint, methods=["GET"]),
            ]
        )

    # --- inspection -------------------------------------------------------------------------

    @property
    def bot_username(self) -> str:
        """The bot's username, without ``@``."""
        return str(self.state.bot_user["username"])

    @property
    def url(self) -> str:
        """The root URL of the running server (after ``serve``)."""
        if self._server is None:
            raise RuntimeError("the fake Telegram server is not running; await serve() first")
        return self._server.url

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Every call of one method (case-insensitive), in order, including refused ones."""
        wanted = method.lower()
        with self.state.lock:
            return [call for call in self.calls if call.method.lower() == wanted]

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        """Every message the bot sent to a chat, in order (deleted ones have ``deleted`` set)."""
        with self.state.lock:
            return [sent for sent in self.state.sent if sent.chat_id == chat_id]

    # --- acting as users ----------------------------------------------------------------------

    def user_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        photo: bytes | None = None,
        document: tuple[str, bytes, str] | None = None,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user posts in ``chat_id`` (a private chat when positive); returns the queued Update."""
        return users.user_message(
            self.state,
            chat_id,
            text,
            user_id=user_id,
            photo=photo,
            document=document,
            caption=caption,
            reply_to=reply_to,
        )

    def callback_query(self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None) -> dict[str, Any]:
        """A user presses the inline button with this callback_data; returns the queued Update."""
        return users.callback_query(self.state, chat_id, message_id, data, user_id=user_id)

    def pre_checkout_query(self, user_id: int, payload: str, stars: int) -> dict[str, Any]:
        """A user confirms a Stars invoice; the answer lands in ``state.pre_checkout_answers[id]``."""
        return payment_methods.pre_checkout_query(self.state, user_id, payload, stars)

    def successful_payment(
        self, user_id: int, payload: str, stars: int, charge_id: str | None = None
    ) -> dict[str, Any]:
        """Telegram took a user's stars (a new charge id unless one is given)."""
        return payment_methods.successful_payment(self.state, user_id, payload, stars, charge_id)

    def refunded_payment(self, user_id: int, payload: str, stars: int, charge_id: str) -> dict[str, Any]:
        """Telegram refunded a Stars payment."""
        return payment_methods.refunded_payment(self.state, user_id, payload, stars, charge_id)

    def webhook_headers(self) -> dict[str, str]:
        """The headers Telegram sends with a webhook delivery (the secret token when one is set)."""
        headers = {"Content-Type": "application/json"}
        if self.state.webhook.secret_token:
            headers[SECRET_HEADER] = self.state.webhook.secret_token
        return headers

    # --- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        times: int = 1,
        retry_after: int | None = None,
        error_code: int = 429,
        description: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error instead of running them.

        ``retry_after`` makes it Telegram's flood error: 429 ``Too Many Requests: retry after N``
        with ``parameters.retry_after``.
        """
        if retry_after is not None:
            error_code = 429
            description = description or f"Too Many Requests: retry after {retry_after}"
        description = description or _DEFAULT_DESCRIPTIONS.get(error_code, "Too Many Requests")
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        with self.state.lock:
            queue = self._faults.setdefault(method.lower(), deque())
            queue.extend(BotApiError(error_code, description, parameters) for _ in range(times))

    def _take_fault(self, method: str) -> None:
        with self.state.lock:
            queue = self._faults.get(method.lower())
            if queue:
                raise queue.popleft()

    # --- HTTP ---------------------------------------------------------------------------------

    async def _answer(self, token: str, method: str, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if token != self.token:
            raise BotApiError(401, "Unauthorized")
        name = _CANONICAL.get(method.lower())
        if name is None:
            raise BotApiError(404, "Not Found")
        self._take_fault(name)
        handler = METHODS[name]
        if inspect.iscoroutinefunction(handler):
            return await handler(self.state, params, files)
        with self.state.lock:
            return handler(self.state, params, files)

    async def _method_endpoint(self, request: Request) -> Response:
        token, method = request.path_params["token"], request.path_params["method"]
        started = time.time()
        params: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        try:
            params, files = await read_request(request)
            result = await self._answer(token, method, params, files)
            answer = result if isinstance(result, ApiResult) else ApiResult(result)
            body: dict[str, Any] = {"ok": True, "result": answer.result}
            if answer.description:
                body["description"] = answer.description
            status = 200
        except BotApiError as error:
            body, status = error.body(), error.error_code
        except HTTPException as error:  # a multipart body Starlette could not read
            body, status = BotApiError(400, f"Bad Request: {error.detail}").body(), 400
        name = _CANONICAL.get(method.lower(), method)
        with self.state.lock:
            self.calls.append(RecordedCall(name, params, files, started, status, body))
        return JSONResponse(body, status_code=status)

    async def _file_endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return JSONResponse(BotApiError(401, "Unauthorized").body(), status_code=401)
        with self.state.lock:
            stored = self.state.files.paths.get(request.path_params["file_path"])
        if stored is None or stored.content is None:
            return JSONResponse(BotApiError(404, "Not Found").body(), status_code=404)
        return Response(stored.content, media_type="application/octet-stream")

    # --- serving ------------------------------------------------------------------------------

    async def serve(self) -> str:
        """Serve over HTTP on a free port of 127.0.0.1; returns the root URL ``http://127.0.0.1:PORT``."""
        if self._server is None:
            self.state.closing = False
            server = ThreadedServer(self.app)
            await server.start()
            self._server = server
        return self._server.url

    async def stop(self) -> None:
        """Stop the HTTP server (pending long polls answer at once)."""
        if self._server is not None:
            self.state.closing = True
            server, self._server = self._server, None
            await server.stop()

    async def __aenter__(self) -> FakeTelegram:
        await self.serve()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    def bot(self, **kwargs: Any) -> Bot:
        """A python-telegram-bot ``telegram.Bot`` pointed at the running server (use it as ``async with``)."""
        return Bot(self.token, base_url=f"{self.url}/bot", base_file_url=f"{self.url}/file/bot", **kwargs)
