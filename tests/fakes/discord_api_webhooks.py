"""Interaction responses: the callback endpoint and the interaction webhooks (@original and followups).

Rules kept from Discord: one callback per interaction (then 40060), within ``callback_window``
seconds of the interaction (else 10062 Unknown interaction, as the token is invalidated); callback
types allowed per interaction type; webhook tokens usable for ``token_lifetime`` seconds (then
50027) and only once the interaction was acknowledged; a followup right after a deferred response
edits the loading message instead of creating one.
"""

from __future__ import annotations

import copy
import hmac
from collections.abc import Callable
from typing import Any

from tests.fakes.discord_api_interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    PING,
    InteractionRecord,
)
from tests.fakes.discord_api_messages import (
    CREATE_FLAGS,
    EPHEMERAL,
    LOADING,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
    MessageStore,
)
from tests.fakes.discord_api_validate import IS_COMPONENTS_V2, validate_choices, validate_modal
from tests.fakes.discord_api_wire import (
    ApiRequest,
    FieldErrors,
    UploadedFile,
    already_acknowledged,
    invalid_webhook_token,
    unknown_interaction,
    unknown_message,
    unknown_webhook,
)

ALLOWED_CALLBACKS: dict[int, tuple[int, ...]] = {
    PING: (1,),
    APPLICATION_COMMAND: (4, 5, 9, 10, 12),
    MESSAGE_COMPONENT: (4, 5, 6, 7, 9, 10),
    AUTOCOMPLETE: (8,),
    MODAL_SUBMIT: (4, 5, 6, 7, 10),
}
FOLLOWUP_FLAGS = EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
Reply = tuple[int, Any]


def _flags(data: dict[str, Any]) -> int:
    value = data.get("flags")
    return value if isinstance(value, int) else 0


def _command_name(data: dict[str, Any]) -> str:
    """The invoked name with sub-command group and sub-command, as ``interaction.name`` shows it."""
    parts = [str(data.get("name", ""))]
    options = data.get("options") or []
    while len(options) == 1 and options[0].get("type") in (1, 2):
        parts.append(str(options[0].get("name")))
        options = options[0].get("options") or []
    return " ".join(parts)


def _payload(req: ApiRequest) -> dict[str, Any]:
    if req.json is None:
        return {}
    if not isinstance(req.json, dict):
        errs = FieldErrors()
        errs.add((), "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        errs.raise_if_any()
    return dict(req.json)


class InteractionWebhooks:
    """Interactions the fake issued, how they were answered, and the messages answering them."""

    def __init__(
        self,
        application_id: str,
        store: MessageStore,
        clock: Callable[[], float],
        callback_window: float,
        token_lifetime: float,
    ) -> None:
        self.application_id = application_id
        self.store = store
        self.clock = clock
        self.callback_window = callback_window
        self.token_lifetime = token_lifetime
        self.records: dict[str, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}

    def clear(self) -> None:
        """Forget every interaction."""
        self.records.clear()
        self._by_token.clear()

    def register(self, record: InteractionRecord) -> None:
        self.records[record.id] = record
        self._by_token[record.token] = record

    # POST /interactions/{interaction_id}/{token}/callback
    def callback(self, req: ApiRequest) -> Reply:
        record = self.records.get(req.params["interaction_id"])
        if record is None or not hmac.compare_digest(record.token, req.params["token"]):
            raise unknown_interaction()
        if record.acknowledged:
            raise already_acknowledged()
        if self.clock() - record.created > self.callback_window:
            raise unknown_interaction()
        message = self.acknowledge(record, _payload(req), req.files, req.root)
        if req.query.get("with_response", "").lower() == "true":
            return 200, self._callback_response(record, message)
        return 204, None

    def acknowledge(
        self, record: InteractionRecord, body: dict[str, Any], files: dict[str, UploadedFile], root: str
    ) -> dict[str, Any] | None:
        """Apply an interaction response (from the callback endpoint or inline); returns its message."""
        ctype = self._callback_type(record, body)
        data = body.get("data")
        message: dict[str, Any] | None = None
        if ctype in (4, 5):
            payload = data if isinstance(data, dict) else {}
            message = self._create_original(record, payload, files, root, deferred=ctype == 5)
        elif ctype in (6, 7):
            record.original_id = record.payload["message"]["id"]
            if ctype == 7:
                payload = data if isinstance(data, dict) else {}
                message = self.store.edit(root, record.original_id, payload, files, prefix=("data",))
        elif ctype in (8, 9):
            errs = FieldErrors()
            (validate_choices if ctype == 8 else validate_modal)(data, errs)
            errs.raise_if_any()
        record.callback_type = ctype
        record.callback_data = copy.deepcopy(data)
        return message

    def _callback_type(self, record: InteractionRecord, body: dict[str, Any]) -> int:
        allowed = ALLOWED_CALLBACKS.get(record.type, ())
        if "message" not in record.payload:
            allowed = tuple(t for t in allowed if t not in (6, 7))
        ctype = body.get("type")
        errs = FieldErrors()
        if ctype is None:
            errs.add(("type",), "BASE_TYPE_REQUIRED", "This field is required")
        elif ctype not in allowed or isinstance(ctype, bool):
            errs.add(("type",), "BASE_TYPE_CHOICES", f"Value must be one of {{{', '.join(map(str, allowed))}}}.")
        errs.raise_if_any()
        assert isinstance(ctype, int)
        return ctype

    def _create_original(
        self,
        record: InteractionRecord,
        payload: dict[str, Any],
        files: dict[str, UploadedFile],
        root: str,
        *,
        deferred: bool,
    ) -> dict[str, Any]:
        flags = (_flags(payload) & EPHEMERAL) | LOADING if deferred else _flags(payload) & CREATE_FLAGS
        message = self.store.create(
            root,
            channel_id=record.payload["channel_id"],
            payload={} if deferred else payload,
            files={} if deferred else files,
            flags=flags,
            extra=self._origin(record),
            prefix=("data",),
            allow_empty=deferred,
        )
        record.original_id = message["id"]
        record.deferred = deferred
        return message

    def _origin(self, record: InteractionRecord, *, followup: bool = False) -> dict[str, Any]:
        """Message fields tying a response to its interaction (type, interaction_metadata, ...)."""
        owners = record.payload.get("authorizing_integration_owners", {})
        meta: dict[str, Any] = {"id": record.id, "type": record.type, "user": record.user}
        meta["authorizing_integration_owners"] = copy.deepcopy(owners)
        data = record.payload.get("data") or {}
        parent = record.payload.get("message")
        if record.type == APPLICATION_COMMAND:
            meta.update(name=_command_name(data), command_type=data.get("type", 1))
            extra: dict[str, Any] = {"type": 20 if data.get("type", 1) == 1 else 23, "interaction_metadata": meta}
            extra["interaction"] = {"id": record.id, "type": record.type, "name": meta["name"], "user": record.user}
        elif parent is not None:
            meta["interacted_message_id"] = parent["id"]
            reference = {"type": 0, "channel_id": record.payload["channel_id"], "message_id": parent["id"]}
            if record.payload.get("guild_id"):
                reference["guild_id"] = record.payload["guild_id"]
            extra = {"type": 19, "interaction_metadata": meta, "message_reference": reference}
        else:
            extra = {"type": 0, "interaction_metadata": meta}
        if followup:
            extra["type"] = 0
            extra.pop("interaction", None)
        return extra

    def _callback_response(self, record: InteractionRecord, message: dict[str, Any] | None) -> dict[str, Any]:
        interaction: dict[str, Any] = {"id": record.id, "type": record.type}
        if record.callback_type in (4, 5) and message is not None:
            interaction["response_message_id"] = message["id"]
            interaction["response_message_loading"] = bool(message["flags"] & LOADING)
            interaction["response_message_ephemeral"] = bool(message["flags"] & EPHEMERAL)
        resource: dict[str, Any] = {"type": record.callback_type}
        if record.callback_type in (4, 7) and message is not None:
            resource["message"] = message
        return {"interaction": interaction, "resource": resource}

    # /webhooks/{app_id}/{token}[/messages/{message_id}]
    def _webhook_record(self, req: ApiRequest) -> InteractionRecord:
        if req.params["app_id"] != self.application_id:
            raise unknown_webhook()
        record = self._by_token.get(req.params["token"])
        if record is None or self.clock() - record.created > self.token_lifetime:
            raise invalid_webhook_token()
        if record.callback_type in (None, 1, 8):
            raise unknown_webhook()
        return record

    def _message_id(self, record: InteractionRecord, message_id: str) -> str:
        wanted = record.original_id if message_id == "@original" else message_id
        if wanted is None or (wanted != record.original_id and wanted not in record.followup_ids):
            raise unknown_message()
        if wanted not in self.store.messages:
            raise unknown_message()
        return wanted

    def get_message(self, req: ApiRequest) -> Reply:
        record = self._webhook_record(req)
        return 200, copy.deepcopy(self.store.messages[self._message_id(record, req.params["message_id"])])

    def edit_message(self, req: ApiRequest) -> Reply:
        record = self._webhook_record(req)
        message_id = self._message_id(record, req.params["message_id"])
        return 200, self.store.edit(req.root, message_id, _payload(req), req.files)

    def delete_message(self, req: ApiRequest) -> Reply:
        record = self._webhook_record(req)
        self.store.delete(self._message_id(record, req.params["message_id"]))
        return 204, None

    def followup(self, req: ApiRequest) -> Reply:
        record = self._webhook_record(req)
        payload = _payload(req)
        original = self.store.messages.get(record.original_id or "")
        if record.deferred and original is not None and original["flags"] & LOADING:
            return 200, self.store.edit(req.root, original["id"], payload, req.files)
        message = self.store.create(
            req.root,
            channel_id=record.payload["channel_id"],
            payload=payload,
            files=req.files,
            flags=_flags(payload) & FOLLOWUP_FLAGS,
            extra=self._origin(record, followup=True),
        )
        record.followup_ids.append(message["id"])
        return 200, message
