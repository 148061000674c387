"""Messages the app creates and edits through interaction webhooks, and the attachment files behind them.

A message keeps every version it had (``history``) so tests can assert on progress edits. Uploaded
files are served back by the fake at ``{root}/attachments/{id}/{filename}`` with the signed-URL
query (``ex``, ``is``, ``hm``) real CDN URLs carry.

Attachments follow the v10 rules: on create every uploaded ``files[n]`` is attached (an
``attachments`` entry with ``id: n`` sets its filename and description); on edit, without an
``attachments`` field new files are appended, and with one the message keeps exactly the listed
existing attachments plus the listed new files.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import mimetypes
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PIL import Image

from tests.fakes.discord_api_validate import IS_COMPONENTS_V2, validate_message
from tests.fakes.discord_api_wire import (
    FieldErrors,
    Snowflakes,
    UploadedFile,
    empty_message,
    entity_too_large,
    unknown_message,
)

SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_VOICE_MESSAGE = 1 << 13
CREATE_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE | IS_COMPONENTS_V2
MAX_FILES = 10
MAX_FILE_BYTES = 25 * 1024 * 1024
_PLACEHOLDER = re.compile(r"files\[(\d+)\]")
Path = tuple[str | int, ...]
Plan = list[tuple[dict[str, Any] | None, UploadedFile | None, dict[str, Any]]]


@dataclass
class StoredFile:
    id: str
    filename: str
    content: bytes
    content_type: str


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def safe_filename(name: str) -> str:
    """Discord's filename clean-up: path parts dropped, anything but ``[A-Za-z0-9._-]`` becomes ``_``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1] or "unknown"
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)


def _image_size(content: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size
    except Exception:
        return None


def _placeholders(files: dict[str, UploadedFile]) -> dict[str, UploadedFile]:
    """Uploaded files by snowflake placeholder: ``n`` of ``files[n]``, else the part's position."""
    result: dict[str, UploadedFile] = {}
    for index, (name, upload) in enumerate(files.items()):
        match = _PLACEHOLDER.fullmatch(name)
        result[match.group(1) if match else str(index)] = upload
    return result


def _number_components(components: list[Any], counter: list[int]) -> list[Any]:
    """Components as Discord stores them: each gets a numeric ``id`` unless the app set one."""
    result = []
    for component in copy.deepcopy(components):
        if isinstance(component, dict):
            counter[0] += 1
            component.setdefault("id", counter[0])
            for key in ("components", "items"):
                if isinstance(component.get(key), list):
                    component[key] = _number_components(component[key], counter)
        result.append(component)
    return result


def _has_body(message: dict[str, Any], attachments: int) -> bool:
    keys = ("content", "embeds", "components", "poll", "sticker_ids")
    return attachments > 0 or any(message.get(k) for k in keys)


class MessageStore:
    """Every message and attachment the fake holds."""

    def __init__(self, ids: Snowflakes, author: dict[str, Any], application_id: str, max_file_bytes: int) -> None:
        self._ids = ids
        self.author = author
        self.application_id = application_id
        self.max_file_bytes = max_file_bytes
        self.messages: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.deleted: dict[str, dict[str, Any]] = {}
        self.files: dict[str, StoredFile] = {}
        self._url_key = secrets.token_bytes(16)

    def clear(self) -> None:
        """Forget every message and file."""
        for table in (self.messages, self.history, self.deleted, self.files):
            table.clear()

    def add_file(
        self, root: str, filename: str, content: bytes, content_type: str, *, description: str | None = None
    ) -> dict[str, Any]:
        """Store bytes and return the attachment object pointing at them."""
        att_id, name = self._ids.next(), safe_filename(filename)
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.files[att_id] = StoredFile(att_id, name, content, content_type)
        issued = int(time.time())
        expires = issued + 86_400
        digest = hmac.new(self._url_key, f"{att_id}:{expires}".encode(), hashlib.sha256).hexdigest()
        url = f"{root}/attachments/{att_id}/{name}?ex={expires:x}&is={issued:x}&hm={digest}&"
        attachment: dict[str, Any] = {
            "id": att_id,
            "filename": name,
            "size": len(content),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        size = _image_size(content)
        if size is not None:
            attachment.update(width=size[0], height=size[1])
        if description:
            attachment["description"] = description
        return attachment

    def create(
        self,
        root: str,
        *,
        channel_id: str,
        payload: dict[str, Any],
        files: dict[str, UploadedFile],
        flags: int,
        extra: dict[str, Any],
        prefix: Path = (),
        allow_empty: bool = False,
    ) -> dict[str, Any]:
        """Validate and store a new message; returns it as Discord would."""
        errs = FieldErrors()
        validate_message(payload, errs, prefix)
        plan = self._plan(payload.get("attachments"), files, None, errs, prefix)
        errs.raise_if_any()
        if not allow_empty and not _has_body(payload, len(plan)):
            raise empty_message()
        message_id = self._ids.next()
        message: dict[str, Any] = {
            "type": 0,
            "content": payload.get("content") or "",
            "mentions": [],
            "mention_roles": [],
        }
        message["attachments"] = self._materialise(root, plan, ephemeral=bool(flags & EPHEMERAL))
        message["embeds"] = self._embeds(payload.get("embeds"), message["attachments"])
        message.update(timestamp=now_iso(), edited_timestamp=None, flags=flags)
        message["components"] = _number_components(payload.get("components") or [], [0])
        message.update(id=message_id, channel_id=channel_id, author=copy.deepcopy(self.author), pinned=False)
        message.update(mention_everyone=False, tts=bool(payload.get("tts")))
        message.update(application_id=self.application_id, webhook_id=self.application_id)
        if payload.get("poll"):
            message["poll"] = copy.deepcopy(payload["poll"])
        message.update(copy.deepcopy(extra))
        self.messages[message_id] = message
        self.history[message_id] = [copy.deepcopy(message)]
        return copy.deepcopy(message)

    def edit(
        self, root: str, message_id: str, payload: dict[str, Any], files: dict[str, UploadedFile], *, prefix: Path = ()
    ) -> dict[str, Any]:
        """Apply an edit (fields absent from ``payload`` stay) and record the new version."""
        current = self.messages.get(message_id)
        if current is None:
            raise unknown_message()
        flags = current["flags"]
        if isinstance(payload.get("flags"), int):
            flags = (flags & ~SUPPRESS_EMBEDS) | (payload["flags"] & (SUPPRESS_EMBEDS | IS_COMPONENTS_V2))
        errs = FieldErrors()
        validate_message({**payload, "flags": flags}, errs, prefix)
        plan = self._plan(payload.get("attachments"), files, current["attachments"], errs, prefix)
        errs.raise_if_any()
        updated = copy.deepcopy(current)
        for key in ("content", "embeds", "components", "poll"):
            if key in payload:
                updated[key] = payload[key] if payload[key] is not None else ("" if key == "content" else [])
        if not _has_body(updated, len(plan)):
            raise empty_message()
        updated["attachments"] = self._materialise(root, plan, ephemeral=bool(flags & EPHEMERAL))
        updated["embeds"] = self._embeds(updated.get("embeds"), updated["attachments"])
        if "components" in payload:
            updated["components"] = _number_components(updated["components"] or [], [0])
        if not current["flags"] & LOADING:
            updated["edited_timestamp"] = now_iso()
        updated["flags"] = flags & ~LOADING
        self.messages[message_id] = updated
        self.history[message_id].append(copy.deepcopy(updated))
        return copy.deepcopy(updated)

    def delete(self, message_id: str) -> None:
        message = self.messages.pop(message_id, None)
        if message is None:
            raise unknown_message()
        self.deleted[message_id] = message

    def adopt(self, message: dict[str, Any]) -> None:
        """Know a message the test made up (the one a clicked component sits on)."""
        if message.get("id") and message["id"] not in self.messages:
            self.messages[message["id"]] = copy.deepcopy(message)
            self.history[message["id"]] = [copy.deepcopy(message)]

    def _plan(
        self,
        meta: Any,
        files: dict[str, UploadedFile],
        existing: list[dict[str, Any]] | None,
        errs: FieldErrors,
        prefix: Path,
    ) -> Plan:
        """Which attachments the message will have: (existing, None, meta) or (None, upload, meta)."""
        uploads = _placeholders(files)
        if any(len(upload.content) > self.max_file_bytes for upload in uploads.values()):
            raise entity_too_large()
        if not isinstance(meta, list):
            plan: Plan = [(a, None, {}) for a in existing or []]
            plan += [(None, upload, {}) for upload in uploads.values()]
        else:
            plan = self._listed(meta, uploads, existing, errs, prefix)
        if len(plan) > MAX_FILES:
            errs.add((*prefix, "attachments"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
        return plan

    def _listed(
        self,
        meta: list[Any],
        uploads: dict[str, UploadedFile],
        existing: list[dict[str, Any]] | None,
        errs: FieldErrors,
        prefix: Path,
    ) -> Plan:
        kept = {a["id"]: a for a in existing or []}
        plan: Plan = []
        used: set[str] = set()
        for i, entry in enumerate(meta):
            entry = entry if isinstance(entry, dict) else {}
            key = str(entry.get("id"))
            if key in kept:
                plan.append((kept[key], None, entry))
            elif key in uploads:
                plan.append((None, uploads[key], entry))
                used.add(key)
            else:
                errs.add((*prefix, "attachments", i, "id"), "ATTACHMENT_NOT_FOUND", "Attachment data not found")
        if existing is None:  # on create, files the list does not name are still attached
            plan += [(None, upload, {}) for key, upload in uploads.items() if key not in used]
        return plan

    def _materialise(self, root: str, plan: Plan, *, ephemeral: bool) -> list[dict[str, Any]]:
        result = []
        for kept, upload, meta in plan:
            if kept is not None:
                attachment = copy.deepcopy(kept)
                if meta.get("description"):
                    attachment["description"] = meta["description"]
            else:
                assert upload is not None
                name = meta.get("filename") or upload.filename
                attachment = self.add_file(
                    root, name, upload.content, upload.content_type, description=meta.get("description")
                )
            if ephemeral:
                attachment["ephemeral"] = True
            result.append(attachment)
        return result

    @staticmethod
    def _embeds(embeds: Any, attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Embeds as stored: ``type: rich``; ``attachment://name`` images resolved to the attachment's URL."""
        by_name = {a["filename"]: a for a in attachments}
        result = []
        for embed in copy.deepcopy(embeds or []):
            embed["type"] = embed.get("type") or "rich"
            for key in ("image", "thumbnail"):
                media = embed.get(key)
                url = media.get("url", "") if isinstance(media, dict) else ""
                if isinstance(url, str) and url.startswith("attachment://") and url[13:] in by_name:
                    found = by_name[url[13:]]
                    embed[key] = {"url": found["url"], "proxy_url": found["proxy_url"], "flags": 0}
                    embed[key].update({k: found[k] for k in ("width", "height", "content_type") if k in found})
            result.append(embed)
        return result
