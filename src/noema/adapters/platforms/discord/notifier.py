"""Delivering a generation's news to Discord: progress edits, results as attachments, failures.

Everything goes into the interaction's original response while its token lives (15 minutes);
files beyond what one message takes go into followups. A result may take several messages: each
is one *part*, recorded by the outbox's part log (``services.outbox.PartLog``) as it goes, so a
retry after a failure or a restart sends only what is missing, never a part twice. Once the token
has expired, a result or failure is posted in the channel with the bot token instead (mentioning
the user); a late progress edit is simply dropped.
"""

from __future__ import annotations

import re
from typing import Any

import structlog

from noema.adapters.platforms import media as results
from noema.adapters.platforms.discord import texts
from noema.adapters.platforms.discord.rest import DiscordApiError, DiscordRest, OutMessage
from noema.adapters.platforms.discord.target import DiscordTarget
from noema.adapters.platforms.media import Media, MediaKind
from noema.adapters.platforms.result_fetch import ResultFetcher
from noema.domain.delivery import Delivery, DeliveryKind, DeliveryPayload
from noema.domain.errors import NotifierError
from noema.domain.generation import Generation
from noema.ports import Clock, UnitOfWorkFactory
from noema.services.outbox import PartLog

log = structlog.get_logger(__name__)
FILES_PER_MESSAGE = 10
TEXT_MAX = 1900


class DiscordNotifier:
    """The Notifier of the ``discord`` platform."""

    def __init__(
        self, rest: DiscordRest, *, media: ResultFetcher, uow_factory: UnitOfWorkFactory, clock: Clock, public_url: str
    ) -> None:
        self.rest, self.media, self.clock, self.public_url = rest, media, clock, public_url
        self.parts = PartLog(uow_factory, clock)

    async def send(self, delivery: Delivery, generation: Generation) -> None:
        """Deliver one outbox row; Discord's refusals become NotifierError (retryable or not)."""
        to = DiscordTarget.parse(delivery.target)
        if to is None:
            raise NotifierError("The delivery has no Discord interaction.", retryable=False)
        if delivery.kind is DeliveryKind.PROGRESS:
            await self._progress(to, delivery.payload, generation)
            return
        if delivery.kind is DeliveryKind.FAILURE:
            parts = [
                OutMessage(texts.message(content="", embeds=[texts.failure_embed(delivery.payload)], components=[]))
            ]
        else:
            parts = await self._result(to, delivery.payload, generation.id)
        await self._send_parts(delivery, to, parts)

    async def _progress(self, to: DiscordTarget, payload: DeliveryPayload, generation: Generation) -> None:
        if not to.token_alive(self._now()):
            return  # too late to edit; the result will be posted in the channel
        # The result or failure edit replaces the components, so the Cancel button ends with the run.
        cancel = [] if generation.is_terminal else texts.cancel_button(generation.id)
        body = texts.message(embeds=[texts.progress_embed(payload)], components=cancel)
        try:
            await self.rest.edit_original(to.token, OutMessage(body))
        except DiscordApiError as exc:
            if not exc.token_gone:
                raise
            log.info("discord_progress_dropped", code=exc.discord_code)

    async def _send_parts(self, delivery: Delivery, to: DiscordTarget, parts: list[OutMessage]) -> None:
        in_channel = not to.token_alive(self._now())
        mention = True

        async def send_part(index: int) -> None:
            nonlocal in_channel, mention
            part = parts[index]
            if not in_channel:
                try:
                    await (self.rest.edit_original if index == 0 else self.rest.followup)(to.token, part)
                except DiscordApiError as exc:
                    if not exc.token_gone:
                        raise
                    in_channel = True
            if in_channel:
                await self._to_channel(to, part, mention=mention)
                mention = False

        await self.parts.send(delivery, len(parts), send_part)

    async def _to_channel(self, to: DiscordTarget, part: OutMessage, *, mention: bool) -> None:
        if to.channel_id is None:
            raise NotifierError("The interaction expired and there is no channel to post in.", retryable=False)
        body = dict(part.payload)
        if to.user_id and mention:
            body["content"] = f"<@{to.user_id}> {body.get('content') or ''}".strip()[:2000]
            body["allowed_mentions"] = {"parse": [], "users": [to.user_id]}
        body.pop("flags", None)
        await self.rest.channel_message(to.channel_id, OutMessage(body, part.files))

    async def _result(self, to: DiscordTarget, payload: DeliveryPayload, generation_id: str) -> list[OutMessage]:
        outputs = [dict(output) for output in payload.outputs]
        files, refused = await self.media.fetch_all(outputs)
        uploads, notes = self._uploads(files, to.size_limit)
        notes += refused
        chunks = [text[i : i + TEXT_MAX] for text in results.texts_of(outputs) for i in range(0, len(text), TEXT_MAX)]
        if not uploads and not chunks and not notes:
            notes.append("The run finished without an output to show.")
        groups = file_groups(uploads, to.size_limit)
        first = groups[0] if groups else []
        shown = next((name for name, media in first if media.kind in (MediaKind.PHOTO, MediaKind.ANIMATION)), None)
        embed = texts.result_embed(payload, image=shown, notes=notes)
        head = texts.message(
            content=chunks[0] if chunks else "", embeds=[embed], components=texts.buttons(generation_id)
        )
        parts = [_with_files(head, first)]
        parts += [_with_files(texts.message(), group) for group in groups[1:]]
        parts += [OutMessage(texts.message(content=chunk)) for chunk in chunks[1:]]
        return parts

    def _uploads(self, files: list[Media], limit: int) -> tuple[list[tuple[str, Media]], list[str]]:
        uploads: list[tuple[str, Media]] = []
        notes: list[str] = []
        names: set[str] = set()
        for n, item in enumerate(files):
            if len(item.content) > limit:
                notes.append(
                    f"{texts.escape(item.filename)} ({_size(len(item.content))}) is over Discord's {_size(limit)} "
                    f"limit for this channel: find it in your history on {self.public_url}/app"
                )
                continue
            name = safe_filename(item.filename)
            if name in names:
                name = f"{n}_{name}"
            names.add(name)
            uploads.append((name, item))
        return uploads, notes

    def _now(self) -> float:
        return self.clock.now().timestamp()


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} KB"


def safe_filename(filename: str) -> str:
    """A file name Discord keeps as it is (so ``attachment://`` finds it)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[:80] or "result.bin"


def file_groups(uploads: list[tuple[str, Media]], limit: int) -> list[list[tuple[str, Media]]]:
    """Files in messages of at most ten, and at most ``limit`` bytes together."""
    groups: list[list[tuple[str, Media]]] = []
    size = 0
    for upload in uploads:
        length = len(upload[1].content)
        if not groups or len(groups[-1]) >= FILES_PER_MESSAGE or size + length > limit:
            groups.append([])
            size = 0
        groups[-1].append(upload)
        size += length
    return groups


def _with_files(payload: dict[str, Any], group: list[tuple[str, Media]]) -> OutMessage:
    """The message with its files; ``attachments`` lists exactly them, so editing again replaces, not adds."""
    body = {**payload, "attachments": [{"id": n, "filename": name} for n, (name, _m) in enumerate(group)]}
    return OutMessage(body, [(name, m.content, m.mime_type) for name, m in group])
