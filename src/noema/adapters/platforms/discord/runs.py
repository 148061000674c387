"""Tool runs from Discord: ``/run``, a tool's own command, and the rerun button.

What can be refused without the database (unknown tool, disabled, missing prompt or image, an
attachment too big or not an image) is answered at once, privately. Otherwise the answer is a
public deferred response and, in the background, the account is found, the image downloaded and
the generation asked for with the interaction as its delivery target: from then on the outbox
edits the original response with progress and the result.
"""

from __future__ import annotations

from noema.adapters.platforms.discord import texts
from noema.adapters.platforms.discord.commands import IMAGE, PROMPT, inputs_of
from noema.adapters.platforms.discord.images import AttachmentFetcher, check_declared
from noema.adapters.platforms.discord.interactions import Interaction
from noema.adapters.platforms.discord.target import DiscordTarget
from noema.domain.accounts import Platform
from noema.domain.chat_commands import split_inputs
from noema.domain.errors import InvalidInput, ToolDisabled, ToolNotFound
from noema.domain.generation import Generation
from noema.domain.tools import Tool
from noema.services.chat import ChatRun, ChatServices, ChatUser, Visit


def caller(ix: Interaction) -> ChatUser:
    """The Discord user behind an interaction."""
    return ChatUser(Platform.DISCORD, ix.user_id, ix.display_name, ix.username)


class ToolRuns:
    """Checks and starts tool runs over the chat services."""

    def __init__(self, chat: ChatServices, fetcher: AttachmentFetcher) -> None:
        self.chat, self.fetcher = chat, fetcher

    async def find(self, ix: Interaction) -> Tool:
        """The tool an invocation names (``/run tool:x`` or ``/x``), ready to run with what was given."""
        wanted = ix.options.get("tool") if ix.name == "run" else ix.name
        ref = str(wanted or "").strip().lstrip("/").lower()
        tool = next((t for t in await self.chat.callable_tools() if ref and t.command == ref), None)
        if tool is None:
            if ix.name == "run":
                shown = texts.escape(ref[:40])
                raise ToolNotFound(f"There is no tool called '{shown}'; /tools lists what you can run.")
            raise ToolNotFound(f"There is no command /{ix.name}. /tools lists what you can run.")
        if not tool.enabled:
            raise ToolDisabled(tool.disabled_reason or f"/{tool.command} is disabled right now.")
        _check_given(tool, ix)
        return tool

    async def start(self, ix: Interaction, tool: Tool) -> Generation:
        """Enter the account's session, fetch the image, and ask for the generation."""
        visit = await self.chat.enter(caller(ix), f"/{tool.command}")
        attachment = ix.attachment(IMAGE)
        files = {}
        to = DiscordTarget.of(ix)
        if attachment is not None and tool.image_input is not None:
            files[tool.image_input.name] = await self.fetcher.download(attachment.url)
            to = to.with_image(attachment.url)
        return await self._run(ix, visit, ChatRun(tool, inputs_of(tool, ix.options), files, to.to_json()))

    async def rerun(self, ix: Interaction, generation_id: str) -> Generation:
        """The same tool with the same inputs (and the same image, fetched again) as an earlier run."""
        visit = await self.chat.enter(caller(ix), "button:rerun")
        plan, earlier = await self.chat.earlier_run(visit.account_id, generation_id)
        tool, files, to = plan.tool, {}, DiscordTarget.of(ix)
        before = DiscordTarget.parse(earlier.delivery)
        image_url = before.image_url if before is not None else None
        if tool.image_input is not None and image_url is not None:
            files[tool.image_input.name] = await self.fetcher.download(image_url)
            to = to.with_image(image_url)
        if plan.missing_file(given=files) is not None:
            raise InvalidInput(f"That run's image is not available any more; use /{tool.command} with the image again.")
        return await self._run(ix, visit, ChatRun(tool, plan.inputs, files, to.to_json()))

    async def _run(self, ix: Interaction, visit: Visit, run: ChatRun) -> Generation:
        keyed = ChatRun(run.tool, run.inputs, run.files, run.delivery, idempotency_key=f"discord:{ix.id}")
        return await self.chat.run(visit, caller(ix), keyed)


def _check_given(tool: Tool, ix: Interaction) -> None:
    attachment = ix.attachment(IMAGE)
    if attachment is not None:
        if tool.image_input is None:
            raise InvalidInput(f"/{tool.command} does not take an image; leave the image option out.")
        check_declared(attachment)
    elif ix.options.get(IMAGE) is not None:
        raise InvalidInput("The attached file did not arrive; attach it again.")
    image = tool.image_input
    if image is not None and image.required and attachment is None:
        raise InvalidInput(texts.usage(tool, f"/{tool.command} needs an image: attach one in the image option."))
    text = ix.options.get(PROMPT)
    prompt, _options = split_inputs(tool, text if isinstance(text, str) else "")
    if tool.prompt_input is not None and tool.prompt_input.required and not prompt:
        raise InvalidInput(texts.usage(tool, f"/{tool.command} needs a prompt: write what you want in the prompt."))
