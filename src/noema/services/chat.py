"""What every chat platform does the same way: who is talking, their session, and the chat commands.

Telegram and Discord parse their own updates and render their own messages; the meaning of a
command (which account, which session, which generation to cancel, which code to issue) is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from noema.domain.accounts import Platform
from noema.domain.chat_commands import parse_options
from noema.domain.errors import GenerationNotFound, InvalidInput, PaymentsDisabled, ToolNotFound
from noema.domain.generation import LIVE, Generation
from noema.domain.ids import parse_id, short_id
from noema.domain.linking import CodePurpose, GuessLimits
from noema.domain.platform_updates import PlatformUpdate
from noema.domain.preferences import settable
from noema.domain.reruns import RerunPlan, plan_rerun
from noema.domain.tools import ACCOUNT, Tool, may_run, rank_for_menu
from noema.ports import Backend, Clock, GenerationFilter, Metrics, Secrets, UnitOfWorkFactory
from noema.services import accounts, api_keys, cancel, events, history, linking, preferences, sessions, status
from noema.services.catalog import Catalog
from noema.services.generations import GenerationRequest, GenerationService
from noema.services.presets import PresetBook
from noema.services.status import StatusReport

#: Telegram shows at most this many commands in its menu; Discord allows 100 global commands.
MENU_LIMIT = 100


@dataclass(frozen=True)
class ChatUser:
    """Someone writing to Noema on a chat platform."""

    platform: Platform
    platform_id: str
    display_name: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class Visit:
    """The account and session a chat command runs in."""

    account_id: str
    session_id: str
    is_new: bool


@dataclass(frozen=True)
class ChatRun:
    """A tool run asked for in a chat: the inputs, the images, and where the answer goes."""

    tool: Tool
    inputs: Mapping[str, Any]
    files: Mapping[str, tuple[str, bytes, str]] = field(default_factory=dict)
    delivery: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    preset: str | None = None  #: run this preset (``tool`` is then its first candidate, for the prompt's input)
    features: tuple[str, ...] = ()
    answers: PlatformUpdate | None = None  #: the update that asked (recorded as answered with the generation)


@dataclass
class ChatServices:
    """The services a chat platform adapter calls (built once in bootstrap)."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    secrets: Secrets
    catalog: Catalog
    generations: GenerationService
    presets: PresetBook
    backend: Backend
    metrics: Metrics
    session_timeout: timedelta
    public_url: str
    link_limits: GuessLimits = field(default_factory=GuessLimits)  #: wrong link codes let through
    cards_enabled: bool = False  #: card top-ups on the web page (Stripe) are set up

    async def enter(self, user: ChatUser, command: str, *, context: dict[str, Any] | None = None) -> Visit:
        """Find or create the account, reuse or open its session, and log the command."""
        profile = {"displayName": user.display_name, "username": user.username, **(context or {})}
        found = await accounts.find_or_create(
            self.uow_factory, self.clock, platform=user.platform, platform_id=user.platform_id, context=profile
        )
        session = await sessions.touch(
            self.uow_factory,
            self.clock,
            account_id=found.account.id,
            platform=user.platform.value,
            timeout=self.session_timeout,
        )
        async with self.uow_factory() as uow:
            events.record(
                uow,
                "user_command_triggered",
                now=self.clock.now(),
                account_id=found.account.id,
                session_id=session.id,
                platform=user.platform.value,
                data={"command": command[:64]},
            )
            await uow.commit()
        return Visit(found.account.id, session.id, found.is_new)

    async def run(self, visit: Visit, user: ChatUser, run: ChatRun) -> Generation:
        """Ask for the generation (validated, priced and held by the generation service)."""
        where: dict[str, Any] = {
            "platform": user.platform.value,
            "delivery": run.delivery,
            "session_id": visit.session_id,
            "idempotency_key": run.idempotency_key,
            "answers": run.answers,
        }
        if run.preset is not None:
            request = await self.presets.request(
                run.preset, run.features, account_id=visit.account_id, inputs=run.inputs, files=run.files, **where
            )
        else:
            request = GenerationRequest(
                account_id=visit.account_id, tool_ref=run.tool.id, inputs=run.inputs, files=run.files, **where
            )
        return await self.generations.request(request)

    async def answered(self, update: PlatformUpdate) -> bool:
        """Whether the platform delivered this update before and it was answered (then nothing is sent again)."""
        async with self.uow_factory() as uow:
            return await uow.platform_updates.seen(update)

    async def mark_answered(self, update: PlatformUpdate) -> None:
        """Remember an update as answered (a tool run already did so with its generation: nothing changes)."""
        async with self.uow_factory() as uow:
            if await uow.platform_updates.record(update, at=self.clock.now()):
                await uow.commit()

    async def live_generations(self, account_id: str) -> list[Generation]:
        """The account's generations that have not ended, newest first."""
        async with self.uow_factory() as uow:
            page = await uow.generations.search(
                GenerationFilter(account_id=account_id, status_in=tuple(LIVE)), limit=50, cursor=None
            )
        return page.items

    async def cancel(self, account_id: str, short: str | None) -> Generation:
        """Cancel the live generation with this short (or full) id, or the only live one when none is named."""
        live = await self.live_generations(account_id)
        if short:
            wanted = short.strip().lower()
            chosen = [g for g in live if wanted in (short_id(g.id), g.id)]
            if not chosen:
                raise GenerationNotFound(f"No running generation has the id {wanted[:10]!r}; /status lists them.")
        elif len(live) == 1:
            chosen = live
        elif not live:
            raise GenerationNotFound("Nothing of yours is running right now.")
        else:
            ids = ", ".join(short_id(g.id) for g in live)
            raise InvalidInput(f"Several generations are running ({ids}); say which one, e.g. /cancel {ids[:5]}.")
        return await cancel.cancel(
            self.uow_factory, self.clock, self.backend, chosen[0].id, account_id=account_id, metrics=self.metrics
        )

    async def link_codes(self, account_id: str, platform: Platform) -> tuple[linking.IssuedCode, str]:
        """A code to type on another platform and a one-time sign-in link for the web page."""
        code = await self._issue(account_id, CodePurpose.LINK, platform)
        sign_in = await self._issue(account_id, CodePurpose.SIGN_IN, platform)
        return code, f"{self.public_url}/signin/link/{sign_in.code}"

    async def _issue(self, account_id: str, purpose: CodePurpose, platform: Platform) -> linking.IssuedCode:
        return await linking.issue(
            self.uow_factory(), self.clock, account_id, purpose, secrets=self.secrets, platform=platform.value
        )

    async def topup_link(self, account_id: str, platform: Platform) -> str:
        """``/topup card``: a one-time sign-in link that opens the web page's top-up panel."""
        if not self.cards_enabled:
            raise PaymentsDisabled("Card payments are not set up on this Noema; ask an operator to add credit.")
        sign_in = await self._issue(account_id, CodePurpose.SIGN_IN, platform)
        return f"{self.public_url}/signin/link/{sign_in.code}?to=topup"

    async def redeem_link(self, account_id: str, code: str) -> str:
        """Merge this account into the one that issued ``code``; returns the surviving account id."""
        survivor = await linking.redeem_link(
            self.uow_factory(), self.clock, code, account_id=account_id, limits=self.link_limits
        )
        return survivor.id

    async def earlier_run(
        self, account_id: str, generation_id: str, *, new_seed: bool = False
    ) -> tuple[RerunPlan, Generation]:
        """For a rerun button: how to run it again, and the earlier run (whose message has the files to give again)."""
        earlier = await history.get(self.uow_factory(), parse_id(generation_id), account_id=account_id)
        tool = next((t for t in await self.callable_tools() if t.id == earlier.tool_id), None)
        if tool is None:
            raise ToolNotFound("That tool is not available any more; /tools lists what you can run.")
        return plan_rerun(tool, earlier, new_seed=new_seed), earlier

    async def set_defaults(self, account_id: str, tool: Tool, text: str) -> dict[str, Any]:
        """``/set``: ``name=value`` pairs change the account's defaults for the tool, ``clear`` removes them."""
        if text.strip().lower() == "clear":
            return await preferences.replace(self.uow_factory(), self.clock, account_id, tool, {})
        leftover, options = parse_options(text)
        if leftover or not options:
            shown = ", ".join(settable(tool)) or "nothing"
            raise InvalidInput(f"Write name=value pairs for inputs of /{tool.command}: {shown}.")
        return await preferences.change(self.uow_factory(), self.clock, account_id, tool, options)

    async def account(self, account_id: str) -> accounts.FoundAccount:
        """``/account``: the account and its platform identities."""
        return await accounts.get(self.uow_factory(), account_id)

    async def status(self, account_id: str, now: datetime) -> StatusReport:
        """``/status``: points, balance, level and what is running at ``now``."""
        return await status.report(self.uow_factory(), account_id, now)

    async def new_api_key(self, account_id: str, *, name: str) -> api_keys.NewKey:
        """``/apikey``: a new personal API key (its plain text is shown once)."""
        return await api_keys.create(self.uow_factory(), self.clock, account_id, secrets=self.secrets, name=name)

    async def defaults(self, account_id: str, tool: Tool) -> dict[str, Any]:
        """``/settings``: the account's defaults for the tool."""
        return await preferences.get(self.uow_factory(), account_id, tool)

    async def generation(self, account_id: str, generation_id: str) -> Generation:
        """One of the account's generations (an info button)."""
        return await history.get(self.uow_factory(), parse_id(generation_id), account_id=account_id)

    async def menu(self, *, limit: int = MENU_LIMIT) -> list[Tool]:
        """The tools a chat menu shows: enabled and public, by priority, then usage, then name."""
        async with self.uow_factory() as uow:
            usage = await uow.generations.count_by_tool()
        return rank_for_menu(await self.catalog.tools(), usage, limit=limit)

    async def callable_tools(self) -> list[Tool]:
        """Every tool a chat user may call by name (the visibility rule of ``domain.tools.may_run``)."""
        return [t for t in await self.catalog.tools() if may_run(t, ACCOUNT)]
