"""A local fake of the Discord HTTP API (v10) for tests of Noema's Discord integration.

It speaks Discord's wire format: application command registration (bulk overwrite and listing,
with Discord's validation), the interaction callback endpoint, the interaction webhooks
(``@original`` and followups, JSON or multipart with ``payload_json`` and ``files[n]``), the CDN for
attachments, rate-limit headers on every response and 429s on demand. It also builds signed
interactions as Discord POSTs them to an app's interactions endpoint.

    fake = FakeDiscord()
    root = await fake.serve()                  # client base URL: f"{root}/api/v10"
    hit = fake.slash("imagine", [{"name": "prompt", "value": "a cat"}])
    response = await fake.deliver(app_url, hit)  # signed POST; an inline answer is applied
    fake.original(hit)                         # the @original message, once the app answered
    await fake.stop()
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from nacl.signing import SigningKey
from starlette.applications import Starlette

from tests.fakes.discord_api_commands import CommandRegistry
from tests.fakes.discord_api_http import DiscordHttp
from tests.fakes.discord_api_interactions import (
    InteractionRecord,
    bot_user,
    build_interaction,
    encode,
    leaf_options,
    mark_focused,
    nest,
    new_token,
    sign,
    user_object,
)
from tests.fakes.discord_api_messages import MAX_FILE_BYTES, MessageStore
from tests.fakes.discord_api_webhooks import InteractionWebhooks
from tests.fakes.discord_api_wire import DiscordError, RateLimiter, RecordedCall, Snowflakes, already_acknowledged

__all__ = ["DEFAULT_CHANNEL", "DEFAULT_GUILD", "DEFAULT_USER", "DiscordError", "FakeDiscord", "RecordedCall"]

DEFAULT_GUILD = "2200000000000000002"
DEFAULT_CHANNEL = "3300000000000000003"
DEFAULT_USER = "4400000000000000004"


class FakeDiscord(DiscordHttp):
    """Discord's HTTP API for one application, on a real local server (see :meth:`serve`)."""

    def __init__(
        self,
        application_id: str = "1100000000000000001",
        bot_token: str = "test-bot-token",
        *,
        bot_name: str = "Noema",
        callback_window: float = 3.0,
        token_lifetime: float = 900.0,
        max_file_bytes: int = MAX_FILE_BYTES,
        route_limit: int = 50,
        route_window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.application_id = application_id
        self.bot_token = bot_token
        self.signing_key = SigningKey.generate()
        self.public_key_hex: str = self.signing_key.verify_key.encode().hex()
        self.bot_user = bot_user(application_id, bot_name)
        self.calls: list[RecordedCall] = []
        self.root = "http://discord.test"
        self._ids = Snowflakes()
        self._clock = clock
        self._lock = threading.RLock()
        self._failures = []
        self._limiter = RateLimiter(route_limit, route_window)
        self._registry = CommandRegistry(application_id, self._ids)
        self.store = MessageStore(self._ids, self.bot_user, application_id, max_file_bytes)
        self.webhooks = InteractionWebhooks(application_id, self.store, clock, callback_window, token_lifetime)
        self._command_ids: dict[str, str] = {}
        self._server = None
        self._thread = None
        self.app = Starlette(routes=self._routes())

    def reset(self) -> None:
        """Forget every call, command, interaction, message and queued failure (to reuse one server)."""
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self._command_ids.clear()
            self._registry.clear()
            self.webhooks.clear()
            self.store.clear()
            self._limiter.clear()

    # --- state tests read -------------------------------------------------------------------------
    @property
    def commands(self) -> dict[tuple[str | None, str], dict[str, Any]]:
        """Registered application commands by (guild id or None, name)."""
        return self._registry.by_name

    @property
    def messages(self) -> dict[str, dict[str, Any]]:
        """Messages created or edited through interaction webhooks, by message id."""
        return self.store.messages

    def channel_messages(self, channel_id: str = DEFAULT_CHANNEL) -> list[dict[str, Any]]:
        """Messages the bot posted in a channel with its token (not through an interaction), oldest first."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self.store.messages.values()
                if m.get("channel_id") == channel_id
                and (m.get("author") or {}).get("bot")
                and m.get("webhook_id") is None
                and "interaction_metadata" not in m
            ]

    def calls_to(self, method: str, path_contains: str) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method.upper() and path_contains in c.path]

    def state_of(self, interaction: dict[str, Any] | str) -> InteractionRecord:
        """What the fake knows of an interaction it issued: callback type and data, message ids."""
        key = interaction if isinstance(interaction, str) else interaction["id"]
        return self.webhooks.records[key]

    def original(self, interaction: dict[str, Any] | str) -> dict[str, Any] | None:
        """The interaction's @original message as it is now, or None."""
        with self._lock:
            record = self.state_of(interaction)
            return copy.deepcopy(self.store.messages.get(record.original_id or ""))

    def followups(self, interaction: dict[str, Any] | str) -> list[dict[str, Any]]:
        """The interaction's followup messages that still exist, oldest first."""
        with self._lock:
            record = self.state_of(interaction)
            return [copy.deepcopy(self.store.messages[m]) for m in record.followup_ids if m in self.store.messages]

    def edits(self, message_id: str) -> list[dict[str, Any]]:
        """Every version of a message, oldest first (the creation, then each edit)."""
        with self._lock:
            return copy.deepcopy(self.store.history.get(message_id, []))

    def file_bytes(self, attachment: dict[str, Any] | str) -> bytes:
        """The stored bytes of an attachment (object or id)."""
        key = attachment if isinstance(attachment, str) else attachment["id"]
        return self.store.files[key].content

    def age(self, interaction: dict[str, Any] | str, seconds: float) -> None:
        """Pretend the interaction was created ``seconds`` earlier (to test the 3 s and 15 min windows)."""
        with self._lock:
            self.state_of(interaction).created -= seconds

    def attachment_url(self, filename: str, content: bytes, content_type: str) -> dict[str, Any]:
        """Store bytes as a user upload; returns the attachment object (its URL is served by this fake)."""
        with self._lock:
            return self.store.add_file(self.root, filename, content, content_type)

    # --- interactions as Discord sends them ---------------------------------------------------------
    def interaction(
        self,
        type: int,
        data: dict[str, Any] | None = None,
        *,
        guild_id: str | None = DEFAULT_GUILD,
        channel_id: str = DEFAULT_CHANNEL,
        user_id: str = DEFAULT_USER,
        username: str = "tester",
        message: dict[str, Any] | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """A full interaction object; the fake remembers it so the app can answer it."""
        interaction_id = self._ids.next()
        payload = build_interaction(
            interaction_id=interaction_id,
            application_id=self.application_id,
            token=new_token(interaction_id),
            type=type,
            data=data,
            guild_id=guild_id,
            channel_id=channel_id,
            user=user_object(user_id, username),
            message=message,
            locale=locale,
        )
        record = InteractionRecord(interaction_id, payload["token"], type, self._clock(), copy.deepcopy(payload))
        with self._lock:
            self.webhooks.register(record)
            if message is not None:
                self.store.adopt(message)
        return payload

    def ping(self) -> dict[str, Any]:
        return self.interaction(1)

    def slash(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        attachments: dict[str, dict[str, Any]] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """An APPLICATION_COMMAND interaction.

        ``name`` may hold sub-commands ("tools list"); ``attachments`` maps option names to attachment
        objects (from :meth:`attachment_url`), added as type-11 options and resolved.
        """
        data = self._command_data(name, options or [], kw.get("guild_id", DEFAULT_GUILD))
        if attachments:
            leaf = leaf_options(data.setdefault("options", []))
            resolved: dict[str, Any] = {}
            for option_name, attachment in attachments.items():
                option = next((o for o in leaf if o.get("name") == option_name), None)
                if option is None:
                    option = {"name": option_name}
                    leaf.append(option)
                option.update(type=11, value=attachment["id"])
                resolved[attachment["id"]] = copy.deepcopy(attachment)
            data["resolved"] = {"attachments": resolved}
        return self.interaction(2, data, **kw)

    def autocomplete(
        self, name: str, options: list[dict[str, Any]], *, focused: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        """APPLICATION_COMMAND_AUTOCOMPLETE; the ``focused`` option (default: the last) is marked."""
        data = self._command_data(name, options, kw.get("guild_id", DEFAULT_GUILD))
        mark_focused(data.get("options", []), focused)
        return self.interaction(4, data, **kw)

    def button(
        self,
        custom_id: str,
        message: dict[str, Any],
        *,
        component_type: int = 2,
        values: list[str] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """MESSAGE_COMPONENT on ``message`` (a button, or a select menu with ``values``)."""
        if not message.get("id"):
            raise ValueError("a component sits on a message: give the message its id")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values or [])
        return self.interaction(3, data, message=message, **kw)

    def modal_submit(self, custom_id: str, values: dict[str, str], **kw: Any) -> dict[str, Any]:
        """MODAL_SUBMIT with one text input per entry of ``values`` (custom id -> value)."""
        rows = [
            {"type": 1, "id": 2 * i + 1, "components": [{"type": 4, "id": 2 * i + 2, "custom_id": k, "value": v}]}
            for i, (k, v) in enumerate(values.items())
        ]
        return self.interaction(5, {"custom_id": custom_id, "components": rows}, **kw)

    def _command_data(self, name: str, options: list[dict[str, Any]], guild_id: str | None) -> dict[str, Any]:
        top, *path = name.split()
        with self._lock:
            command = copy.deepcopy(self._registry.find(top, guild_id))
            command_id = command["id"] if command else self._command_ids.setdefault(top, self._ids.next())
        data: dict[str, Any] = {"id": command_id, "name": top, "type": 1}
        nested = nest(path, copy.deepcopy(options), (command or {}).get("options"))
        if nested:
            data["options"] = nested
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return data

    def sign(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """``X-Signature-Ed25519`` and ``X-Signature-Timestamp`` over ``timestamp + body``."""
        return sign(self.signing_key, body, timestamp)

    def signed(self, interaction: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body and headers of Discord's POST of ``interaction`` to the app."""
        body = encode(interaction)
        headers = {"Content-Type": "application/json", "User-Agent": "Discord-Interactions/1.0 (+https://discord.com)"}
        return body, {**headers, **self.sign(body)}

    async def deliver(
        self, url: str, interaction: dict[str, Any], *, client: httpx.AsyncClient | None = None, timeout: float = 3.0
    ) -> httpx.Response:
        """POST a signed interaction to the app's endpoint as Discord does.

        A JSON 200 answer is applied as the interaction response (Discord's inline response), raising
        :class:`DiscordError` if invalid.
        """
        body, headers = self.signed(interaction)
        if client is None:
            async with httpx.AsyncClient(timeout=timeout) as own:
                response = await own.post(url, content=body, headers=headers)
        else:
            response = await client.post(url, content=body, headers=headers, timeout=timeout)
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("application/json"):
            self.respond_inline(interaction, response.json())
        return response

    def respond_inline(self, interaction: dict[str, Any], response: dict[str, Any]) -> dict[str, Any] | None:
        """Apply an interaction response the app returned in its HTTP answer; returns the message made."""
        with self._lock:
            record = self.state_of(interaction)
            if record.acknowledged:
                raise already_acknowledged()
            if not isinstance(response, dict):
                raise DiscordError(
                    400,
                    "Invalid Form Body",
                    50035,
                    {
                        "_errors": [
                            {"code": "MODEL_TYPE_CONVERT", "message": "Only dictionaries may be used in a ModelType"}
                        ]
                    },
                )
            return self.webhooks.acknowledge(record, response, {}, self.root)
