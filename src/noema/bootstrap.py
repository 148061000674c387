"""Builds the container, Noema's object graph, from Settings: database, backend, catalog, services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from noema.adapters.backends.combined import CombinedBackend
from noema.adapters.backends.comfydeploy import ComfyDeployBackend
from noema.adapters.backends.comfyui.backend import ComfyUIBackend, load_workflows_dir
from noema.adapters.backends.comfyui.links import LinkFetcher
from noema.adapters.backends.sandbox import SandboxConfig, SandboxServer, new_api_key
from noema.adapters.clock import SystemClock
from noema.adapters.db.comfyui_line import SqlRunLine
from noema.adapters.db.engine import Pool, create_engine
from noema.adapters.db.migrate import upgrade_to_head
from noema.adapters.db.outbox_signal import OutboxSignal
from noema.adapters.db.uow import SqlUnitOfWorkFactory
from noema.adapters.ids import TimeOrderedIds
from noema.adapters.local_transport import LocalFirstTransport
from noema.adapters.media_store import MEDIA_PATH, MediaStore
from noema.adapters.metrics import PrometheusMetrics
from noema.adapters.payments.stripe_gateway import StripeGateway
from noema.adapters.platforms.discord import DiscordPlatform
from noema.adapters.platforms.result_fetch import MediaSources, ResultFetcher, sources_for
from noema.adapters.platforms.telegram import WEBHOOK_PATH, TelegramPlatform
from noema.adapters.platforms.telegram.payments import StarsOffer
from noema.adapters.platforms.telegram.stars_gateway import TelegramStarsGateway
from noema.adapters.randomness import SystemSecrets
from noema.config import BackendKind, ConfigError, Settings, TelegramMode
from noema.domain.errors import InvalidWorkflow
from noema.domain.linking import GuessLimits
from noema.domain.runs import RunUpdate
from noema.ports import Backend, Clock, Notifier, Secrets
from noema.services.backend_updates import BackendUpdates
from noema.services.card_payments import CardPayments
from noema.services.catalog import Catalog
from noema.services.chat import ChatServices
from noema.services.generations import GenerationService, Limits
from noema.services.live_updates import LiveUpdates, LiveUpdatesNotifier
from noema.services.loras import LoraLibrary
from noema.services.presets import PresetBook
from noema.services.progress_batches import ProgressBatches
from noema.services.stars_payments import StarsPayments

SANDBOX_MOUNT = "/sandbox"


@dataclass
class Container:
    """Everything the entrypoints need, built once per process."""

    settings: Settings
    engine: AsyncEngine
    uow: SqlUnitOfWorkFactory
    clock: Clock
    secrets: Secrets
    started_at: datetime
    registry: CollectorRegistry
    metrics: PrometheusMetrics
    backend: Backend
    catalog: Catalog
    generations: GenerationService
    live: LiveUpdates
    local_transport: LocalFirstTransport
    chat: ChatServices
    loras: LoraLibrary
    presets: PresetBook
    #: the backend's webhooks and socket observations, recorded with their dependencies bound
    backend_updates: BackendUpdates
    sandbox: SandboxServer | None = None
    telegram: TelegramPlatform | None = None
    discord: DiscordPlatform | None = None
    stripe: StripeGateway | None = None
    stars: TelegramStarsGateway | None = None
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    media_store: MediaStore | None = None
    #: fetches result files from the backend's hosts (for chats, and for the web page's downloads)
    media_fetcher: ResultFetcher | None = None
    comfyui: ComfyUIBackend | None = None
    #: card top-ups, when Stripe is set up
    card_payments: CardPayments | None = None
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _sandbox_started: bool = False

    @property
    def session_timeout(self) -> timedelta:
        """How long a session may be idle before it ends."""
        return timedelta(minutes=self.settings.session_timeout_minutes)

    async def _observed(self, generation_id: str | None, update: RunUpdate) -> None:
        await self.backend_updates.observed(generation_id, update)

    @property
    def limits(self) -> Limits:
        """Per-account limits and follow-up timing."""
        return self.generations.limits

    def bind_app(self, app: Any) -> None:
        """Let in-process requests for our own URL (the embedded sandbox's webhooks) reach the app."""
        self.local_transport.app = app

    async def start(self, *, serving: bool = True) -> None:
        """Bring the schema up to date; when serving, start the embedded sandbox too.

        One-shot commands (``noema credit``, ``ledger verify`` …) pass ``serving=False``: a second
        process driving the same sandbox runs would send their webhooks twice.
        """
        if self.settings.migrate_on_start:
            await upgrade_to_head(self.engine)
        if self.sandbox is not None and serving:
            await self.sandbox.start()
            self._sandbox_started = True
        if self.comfyui is not None and serving:
            await self.comfyui.start(self._observed)
        if self.telegram is not None and serving:
            await self.telegram.start()
        if self.discord is not None and serving:
            await self.discord.start()

    async def close(self) -> None:
        """Stop the platforms and the sandbox, close clients and connections."""
        if self.telegram is not None:
            await self.telegram.stop()
        if self.discord is not None:
            await self.discord.stop()
        if self.sandbox is not None and self._sandbox_started:
            await self.sandbox.stop()
        if self.comfyui is not None:
            await self.comfyui.close()
        await self.backend_updates.close()  # a batch being written holds a transaction (SQLite's write lock)
        for client in self._clients:
            await client.aclose()
        if self.stripe is not None:
            await self.stripe.close()
        await self.engine.dispose()


def _backend(
    settings: Settings, local: LocalFirstTransport, clients: list[httpx.AsyncClient]
) -> tuple[Backend, SandboxServer | None]:
    if BackendKind.COMFYDEPLOY in settings.backends:
        client = httpx.AsyncClient(follow_redirects=False)
        clients.append(client)
        key = settings.comfydeploy_api_key.get_secret_value() if settings.comfydeploy_api_key else ""
        backend = ComfyDeployBackend(
            client=client,
            base_url=settings.comfydeploy_base_url,
            api_key=key,
            max_requests_per_second=settings.comfydeploy_max_rps,
        )
        return backend, None
    outgoing = httpx.AsyncClient(transport=local, timeout=30)
    # The sandbox answers only its key (configured, or random per start), and posts webhooks only to us.
    configured_key = settings.sandbox_api_key.get_secret_value().strip() if settings.sandbox_api_key else ""
    config = SandboxConfig(
        public_base_url=settings.base_url + SANDBOX_MOUNT,
        data_dir=Path(settings.sandbox_data_dir),
        run_seconds=settings.sandbox_run_seconds,
        faults=settings.sandbox_faults,
        api_key=configured_key or new_api_key(),
        webhook_base=settings.base_url,
    )
    sandbox = SandboxServer(config, http_client=outgoing)
    inbound = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://sandbox.local")
    clients += [outgoing, inbound]
    backend = ComfyDeployBackend(
        client=inbound,
        base_url="http://sandbox.local/api",
        api_key=config.api_key,
        label="Sandbox (not a real GPU)",
        retry_max_wait_seconds=2.0,
        max_requests_per_second=1000.0,
    )
    return backend, sandbox


def _comfyui(
    settings: Settings, store: MediaStore, clients: list[httpx.AsyncClient], rates: dict[str, int], line: SqlRunLine
) -> ComfyUIBackend:
    try:
        workflows = load_workflows_dir(Path(settings.comfyui_workflows_dir))
    except InvalidWorkflow as exc:
        raise ConfigError(f"NOEMA_COMFYUI_WORKFLOWS_DIR: {exc.message}") from None
    http = httpx.AsyncClient(follow_redirects=False)
    clients.append(http)
    return ComfyUIBackend(
        servers=list(settings.comfyui_servers),
        workflows=workflows,
        http=http,
        store=store,
        rates=rates,
        slots=settings.comfyui_slots,
        links=LinkFetcher(http, settings.comfyui_input_hosts),
        line=line,
    )


def _joined(comfyui: ComfyUIBackend | None, cloud: Backend | None) -> Backend:
    """The one backend, or both behind one (settings name at least one)."""
    if comfyui is not None and cloud is not None:
        return CombinedBackend(comfyui, cloud)
    found = comfyui or cloud
    assert found is not None
    return found


def _media_sources(settings: Settings, sandboxed: bool) -> MediaSources:
    """Where result files may be fetched from: the backends' own hosts (NOEMA_MEDIA_HOSTS)."""
    own_media = settings.base_url + MEDIA_PATH if BackendKind.COMFYUI in settings.backends else None
    if settings.backends == (BackendKind.COMFYUI,):
        return sources_for(
            backend_url=None, sandbox_files_url=None, configured=settings.media_hosts, own_media_url=own_media
        )
    cloud = sources_for(
        backend_url=None if sandboxed else settings.comfydeploy_base_url,
        sandbox_files_url=settings.base_url + SANDBOX_MOUNT + "/files/" if sandboxed else None,
        configured=settings.media_hosts,
    )
    return cloud if own_media is None else cloud.with_trusted(own_media)


def _telegram(settings: Settings, chat: ChatServices, media: ResultFetcher) -> TelegramPlatform | None:
    if settings.telegram_bot_token is None:
        return None
    secret = settings.telegram_webhook_secret
    return TelegramPlatform(
        token=settings.telegram_bot_token.get_secret_value(),
        api_root=settings.telegram_api_base_url,
        polling=settings.telegram_mode is TelegramMode.POLLING,
        webhook_url=settings.base_url + WEBHOOK_PATH,
        webhook_secret=secret.get_secret_value() if secret else None,
        chat_messages_per_second=settings.telegram_chat_messages_per_second,
        chat=chat,
        media=media,
        stars=StarsOffer(
            packages=settings.stars_packages,
            support_text=settings.paysupport_text,
            payments=StarsPayments(
                chat.uow_factory, chat.clock, nanos_per_star=settings.stars_usd, most_open=settings.max_open_payments
            ),
        ),
    )


def _stars(settings: Settings) -> TelegramStarsGateway | None:
    """Stars refunds go through the bot's own token, so they are on whenever Telegram is."""
    if settings.telegram_bot_token is None:
        return None
    return TelegramStarsGateway(
        token=settings.telegram_bot_token.get_secret_value(), api_root=settings.telegram_api_base_url
    )


def _discord(
    settings: Settings, chat: ChatServices, media: ResultFetcher, clients: list[httpx.AsyncClient]
) -> DiscordPlatform | None:
    if settings.discord_bot_token is None or not settings.discord_application_id or not settings.discord_public_key:
        return None
    http = httpx.AsyncClient(timeout=30, follow_redirects=False)
    clients.append(http)
    return DiscordPlatform(
        application_id=settings.discord_application_id,
        public_key=settings.discord_public_key,
        bot_token=settings.discord_bot_token.get_secret_value(),
        api_base_url=settings.discord_api_base_url,
        guild_ids=settings.discord_guilds,
        chat=chat,
        http=http,
        media=media,
    )


def _stripe(settings: Settings) -> StripeGateway | None:
    """Card payments, when both Stripe secrets are set."""
    if settings.stripe_secret_key is None or settings.stripe_webhook_secret is None:
        return None
    return StripeGateway(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
        api_base=settings.stripe_api_base,
    )


def _card_payments(
    settings: Settings, stripe: StripeGateway | None, uow_factory: SqlUnitOfWorkFactory, clock: Clock
) -> CardPayments | None:
    if stripe is None:
        return None
    return CardPayments(
        uow_factory,
        clock,
        stripe,
        public_url=settings.base_url,
        amounts=settings.stripe_amounts,
        most_open=settings.max_open_payments,
    )


def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    """The container for these settings (nothing is connected until ``start``)."""
    engine = create_engine(
        settings.database_url,
        pool=Pool(settings.db_pool_size, settings.db_pool_overflow, settings.db_pool_timeout),
    )
    clock = clock or SystemClock()
    secrets: Secrets = SystemSecrets()
    uow_factory = SqlUnitOfWorkFactory(engine, OutboxSignal(), ids=TimeOrderedIds())
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    local = LocalFirstTransport(settings.base_url)
    clients: list[httpx.AsyncClient] = []
    rates = dict(settings.gpu_rates)
    store = MediaStore(Path(settings.media_dir), settings.base_url)
    kinds = settings.backends
    comfyui = _comfyui(settings, store, clients, rates, SqlRunLine(engine)) if BackendKind.COMFYUI in kinds else None
    cloud, sandbox = _backend(settings, local, clients) if kinds[-1] is not BackendKind.COMFYUI else (None, None)
    backend = _joined(comfyui, cloud)
    catalog = Catalog(
        backend=backend,
        uow_factory=uow_factory,
        clock=clock,
        rates=rates,
        overrides=dict(settings.tool_overrides),
        ttl_seconds=settings.catalog_ttl_seconds,
        backend_label=backend.label,
    )
    # Without webhooks a run is followed by polling alone, so it is polled as soon as it goes quiet.
    poll_every = settings.poll_seconds if settings.comfydeploy_webhooks else min(settings.poll_seconds, 2.0)
    quiet_for = settings.quiet_seconds if settings.comfydeploy_webhooks else poll_every
    limits = Limits(
        max_concurrent=settings.max_concurrent_runs,
        per_minute=settings.max_runs_per_minute,
        quiet_for=timedelta(seconds=quiet_for),
        poll_every=timedelta(seconds=poll_every),
        webhooks=settings.comfydeploy_webhooks,
    )
    loras = LoraLibrary(uow_factory=uow_factory, clock=clock, ttl_seconds=settings.lora_cache_seconds)
    generations = GenerationService(
        uow_factory=uow_factory,
        clock=clock,
        secrets=secrets,
        backend=backend,
        catalog=catalog,
        limits=limits,
        webhook_base=settings.base_url,
        metrics=metrics,
        loras=loras,
        max_loras=settings.max_loras_per_prompt,
    )
    live = LiveUpdates()
    uow_factory.live = live.wake
    hub = LiveUpdatesNotifier(live)
    presets = PresetBook(dict(settings.presets), catalog=catalog, uow_factory=uow_factory, clock=clock)
    chat = ChatServices(
        uow_factory=uow_factory,
        clock=clock,
        secrets=secrets,
        catalog=catalog,
        generations=generations,
        presets=presets,
        backend=backend,
        metrics=metrics,
        session_timeout=timedelta(minutes=settings.session_timeout_minutes),
        public_url=settings.base_url,
        link_limits=GuessLimits(settings.link_guesses_per_account, settings.link_guesses_overall),
        cards_enabled=settings.stripe_secret_key is not None and settings.stripe_webhook_secret is not None,
    )
    # API and web runs get no outbox rows now (LIVE_PLATFORMS); the hub still sends rows an older Noema wrote.
    notifiers: dict[str, Notifier] = {"api": hub, "web": hub}
    # Result files are fetched from the backend's URLs; the embedded sandbox's are served in-process.
    media_client = httpx.AsyncClient(transport=local, timeout=60, follow_redirects=False)
    clients.append(media_client)
    media = ResultFetcher(media_client, _media_sources(settings, sandbox is not None))
    telegram = _telegram(settings, chat, media)
    if telegram is not None:
        notifiers["telegram"] = telegram.notifier
    discord = _discord(settings, chat, media, clients)
    if discord is not None:
        notifiers["discord"] = discord.notifier
    stripe = _stripe(settings)
    return Container(
        settings=settings,
        engine=engine,
        uow=uow_factory,
        clock=clock,
        secrets=secrets,
        started_at=clock.now(),
        registry=registry,
        metrics=metrics,
        backend=backend,
        catalog=catalog,
        generations=generations,
        live=live,
        local_transport=local,
        chat=chat,
        loras=loras,
        sandbox=sandbox,
        telegram=telegram,
        discord=discord,
        stripe=stripe,
        stars=_stars(settings),
        notifiers=notifiers,
        media_store=store,
        media_fetcher=media,
        comfyui=comfyui,
        presets=presets,
        backend_updates=BackendUpdates(
            uow_factory,
            clock,
            backend,
            metrics=metrics,
            quiet_for=limits.quiet_for,
            batches=ProgressBatches(uow_factory, clock, metrics=metrics, quiet_for=limits.quiet_for),
        ),
        card_payments=_card_payments(settings, stripe, uow_factory, clock),
        _clients=clients,
    )
