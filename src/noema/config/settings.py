"""Settings: the one place that reads the environment (``NOEMA_*`` variables and ``.env``)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import Enum
from typing import Annotated, Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from noema.config.media_hosts import Source, parse_hosts
from noema.config.sandbox_faults import parse_faults
from noema.config.values import (
    BackendKind,
    ClientKeys,
    ComfyUIServer,
    PresetsFile,
    load_presets,
    parse_backends,
    parse_client_keys,
    parse_comfyui_servers,
    parse_guild_ids,
    parse_rate_table,
    parse_tool_overrides,
)
from noema.domain.errors import InvalidInput
from noema.domain.payments import parse_amounts
from noema.domain.presets import Preset
from noema.domain.stars import parse_packages, parse_rate
from noema.domain.tools import ToolOverride

ENV_PREFIX = "NOEMA_"
_DISCORD_FORMATS = {
    "discord_application_id": (r"^\d{1,25}$", "must be the application's numeric id (a snowflake of digits)"),
    "discord_public_key": (r"^[0-9a-fA-F]{64}$", "must be the application's public key: 64 hexadecimal characters"),
}
_T = TypeVar("_T")


def _from_text(value: object, parse: Callable[[str], _T]) -> _T:
    """A setting given as text (the environment) is parsed; one given already parsed (a test) is kept."""
    if not isinstance(value, str):
        return value  # type: ignore[return-value]
    try:
        return parse(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


class ConfigError(Exception):
    """The configuration is not usable; the message names the variable."""


class TelegramMode(str, Enum):
    WEBHOOK = "webhook"  #: updates arrive at POST /api/webhook/telegram (production)
    POLLING = "polling"  #: Noema asks with getUpdates (development, no public URL needed)


class LogFormat(str, Enum):
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    """Every setting of Noema, typed and validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,  # the parsed values below are Noema's own types
    )

    database_url: str = "sqlite+aiosqlite:///./noema.db"
    #: PostgreSQL connections one process keeps (NOEMA_DB_POOL_SIZE) and may open beyond them at a peak;
    #: a request that finds none free within NOEMA_DB_POOL_TIMEOUT seconds gets 503 + Retry-After.
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_pool_overflow: int = Field(default=10, ge=0, le=500)
    db_pool_timeout: float = Field(default=5.0, gt=0, le=120)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    #: ``name:key,...``: the internal API's clients by key (repr shows only their names)
    internal_api_keys: Annotated[ClientKeys, NoDecode] = ClientKeys()
    session_timeout_minutes: int = Field(default=30, ge=1, le=60 * 24 * 30)
    migrate_on_start: bool = True
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.CONSOLE
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    workers_enabled: bool = True
    metrics_token: SecretStr | None = None  #: Bearer token for /metrics; unset: loopback clients only

    #: one backend, or ``comfyui,comfydeploy`` / ``comfyui,sandbox``: own servers first, the cloud beside them
    backend: Annotated[tuple[BackendKind, ...], NoDecode] = (BackendKind.SANDBOX,)
    comfydeploy_api_key: SecretStr | None = None
    comfydeploy_base_url: str = "https://api.comfydeploy.com/api"
    comfydeploy_webhooks: bool = True
    comfydeploy_max_rps: float = Field(default=20.0, gt=0, le=1000)
    sandbox_run_seconds: float = Field(default=3.0, gt=0, le=600)
    sandbox_faults: Annotated[Mapping[str, float], NoDecode] = Field(default_factory=dict)  #: fault -> probability
    sandbox_data_dir: str = "./sandbox-data"
    sandbox_api_key: SecretStr | None = None
    sandbox_signups_per_hour: int = Field(default=3, ge=1, le=100_000)  #: "Try the sandbox" accounts per address
    max_concurrent_runs: int = Field(default=3, ge=1, le=100)
    max_runs_per_minute: int = Field(default=20, ge=1, le=10_000)
    catalog_ttl_seconds: float = Field(default=300, ge=5)
    poll_seconds: float = Field(default=20, gt=0, le=3600)
    quiet_seconds: float = Field(default=60, gt=0, le=3600)
    #: nanos per second by GPU: Noema's rate table with ``GPU=USD per second,...`` over it
    gpu_rates: Annotated[Mapping[str, int], NoDecode] = Field(default_factory=lambda: parse_rate_table(""))
    tool_overrides: Annotated[Mapping[str, ToolOverride], NoDecode] = Field(default_factory=dict)  #: JSON
    presets_file: Annotated[PresetsFile | None, NoDecode] = None  #: a TOML file's path, read once
    max_loras_per_prompt: int = Field(default=5, ge=0, le=20)
    media_hosts: Annotated[tuple[Source, ...] | None, NoDecode] = None
    link_guesses_per_account: int = Field(default=5, ge=1, le=1000)
    link_guesses_overall: int = Field(default=200, ge=1, le=1_000_000)
    lora_cache_seconds: float = Field(default=60, ge=0, le=3600)

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_mode: TelegramMode = TelegramMode.WEBHOOK
    telegram_webhook_secret: SecretStr | None = None
    #: messages (sends and edits) a second to one chat, kept on our side: Telegram's flood limit is about one
    telegram_chat_messages_per_second: float = Field(default=1.0, gt=0, le=1000)

    comfyui_servers: Annotated[tuple[ComfyUIServer, ...], NoDecode] = ()  #: ``URL=GPU,URL=GPU`` (NOEMA_BACKEND=comfyui)
    comfyui_slots: int = Field(default=2, ge=1, le=100)
    comfyui_workflows_dir: str = "./workflows"
    #: hosts whose public picture links a ComfyUI run may take as inputs (as NOEMA_MEDIA_HOSTS); unset: none
    comfyui_input_hosts: Annotated[tuple[Source, ...] | None, NoDecode] = None
    media_dir: str = "./media"
    media_retention_days: int = Field(default=30, ge=1, le=3650)

    discord_bot_token: SecretStr | None = None
    discord_application_id: str | None = None
    discord_public_key: str | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  #: tests only: the fake Stripe API
    stripe_amounts_usd: Annotated[tuple[int, ...], NoDecode] = (500, 1000, 2500)  #: given in USD, kept in cents
    stars_packages: Annotated[tuple[int, ...], NoDecode] = (50, 100, 250, 500)  #: Telegram Stars /topup offers
    stars_usd: int = parse_rate("0.013")  #: credit per Telegram Star: given in USD, kept in nanos
    max_open_payments: int = Field(default=5, ge=1, le=100)  #: unpaid checkouts (and Stars invoices) per account
    paysupport_text: str = (
        "For help with a payment, write to the operator of this bot and include the payment id"
        " from your receipt. Refunds of Telegram Stars are made by the operator."
    )
    discord_guild_ids: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", value):
            raise ValueError("must be an http(s) URL such as https://noema.example.com")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("comfydeploy_base_url")
    @classmethod
    def _backend_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", value):
            raise ValueError("must be an http(s) URL such as https://api.comfydeploy.com/api")
        return value.rstrip("/")

    @field_validator("telegram_api_base_url")
    @classmethod
    def _telegram_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", value):
            raise ValueError("must be the Bot API server root, such as https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("telegram_bot_token")
    @classmethod
    def _telegram_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not re.match(r"^\d{1,20}:[A-Za-z0-9_\-]{20,100}$", value.get_secret_value()):
            raise ValueError("is not a bot token of the form 123456:ABC... (ask @BotFather)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not re.match(r"^[A-Za-z0-9_\-]{16,256}$", value.get_secret_value()):
            raise ValueError("must be 16-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @field_validator("discord_bot_token")
    @classmethod
    def _discord_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not re.match(r"^[A-Za-z0-9_\-.]{8,200}$", value.get_secret_value()):
            raise ValueError("is not a bot token (copy it from the Bot page of the Discord developer portal)")
        return value

    @field_validator("discord_application_id", "discord_public_key")
    @classmethod
    def _discord_ids(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        pattern, meaning = _DISCORD_FORMATS[str(info.field_name)]
        if not re.match(pattern, value.strip()):
            raise ValueError(meaning)
        return value.strip().lower()

    @field_validator("discord_api_base_url")
    @classmethod
    def _discord_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", value):
            raise ValueError("must be the REST API root, such as https://discord.com/api/v10")
        return value.rstrip("/")

    @field_validator("stripe_api_base")
    @classmethod
    def _stripe_base(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("internal_api_keys", mode="plain")
    @classmethod
    def _client_keys(cls, value: object) -> ClientKeys:
        return _from_text(value.get_secret_value() if isinstance(value, SecretStr) else value, parse_client_keys)

    @field_validator("backend", mode="plain")
    @classmethod
    def _backend_list(cls, value: object) -> tuple[BackendKind, ...]:
        return _from_text(value.value if isinstance(value, BackendKind) else value, parse_backends)

    @field_validator("presets_file", mode="plain")
    @classmethod
    def _presets(cls, value: object) -> PresetsFile | None:
        return _from_text(value, load_presets) if value else None

    @field_validator("stripe_amounts_usd", mode="plain")
    @classmethod
    def _stripe_amounts(cls, value: object) -> tuple[int, ...]:
        return _from_text(value, parse_amounts)

    @field_validator("stars_packages", mode="plain")
    @classmethod
    def _stars_packages(cls, value: object) -> tuple[int, ...]:
        return _from_text(value, parse_packages)

    @field_validator("stars_usd", mode="plain")
    @classmethod
    def _stars_usd(cls, value: object) -> int:
        return _from_text(value, parse_rate)

    @field_validator("discord_guild_ids", mode="plain")
    @classmethod
    def _discord_guilds(cls, value: object) -> tuple[str, ...]:
        return _from_text(value, parse_guild_ids)

    @field_validator("sandbox_faults", mode="plain")
    @classmethod
    def _faults(cls, value: object) -> Mapping[str, float]:
        return _from_text(value, parse_faults)

    @field_validator("media_hosts", "comfyui_input_hosts", mode="plain")
    @classmethod
    def _hosts(cls, value: object) -> tuple[Source, ...] | None:
        return None if value is None else _from_text(value, parse_hosts)

    @field_validator("comfyui_servers", mode="plain")
    @classmethod
    def _comfyui_servers(cls, value: object) -> tuple[ComfyUIServer, ...]:
        return _from_text(value, parse_comfyui_servers)

    @field_validator("gpu_rates", mode="plain")
    @classmethod
    def _rates(cls, value: object) -> Mapping[str, int]:
        return _from_text(value, parse_rate_table)

    @field_validator("tool_overrides", mode="plain")
    @classmethod
    def _overrides(cls, value: object) -> Mapping[str, ToolOverride]:
        return _from_text(value, parse_tool_overrides)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.public_url is None:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.port}")
        if BackendKind.COMFYDEPLOY in self.backends and not (
            self.comfydeploy_api_key and self.comfydeploy_api_key.get_secret_value()
        ):
            raise ValueError("NOEMA_COMFYDEPLOY_API_KEY is required when NOEMA_BACKEND=comfydeploy")
        if BackendKind.COMFYUI in self.backends and not self.comfyui_servers:
            raise ValueError(
                "NOEMA_COMFYUI_SERVERS is required when NOEMA_BACKEND=comfyui (e.g. http://10.0.0.5:8188=A10G)"
            )
        if self.telegram_enabled and self.telegram_mode is TelegramMode.WEBHOOK and not self.telegram_webhook_secret:
            raise ValueError(
                "NOEMA_TELEGRAM_WEBHOOK_SECRET is required with NOEMA_TELEGRAM_MODE=webhook "
                "(or set NOEMA_TELEGRAM_MODE=polling for development)"
            )
        if self.discord_enabled:
            for name in ("discord_application_id", "discord_public_key"):
                if getattr(self, name) is None:
                    raise ValueError(f"NOEMA_{name.upper()} is required when NOEMA_DISCORD_BOT_TOKEN is set")
        if bool(self.stripe_secret_key) != bool(self.stripe_webhook_secret):
            raise ValueError("NOEMA_STRIPE_SECRET_KEY and NOEMA_STRIPE_WEBHOOK_SECRET are set together (or neither)")
        return self

    @property
    def backends(self) -> tuple[BackendKind, ...]:
        """The configured backends, the operator's own ComfyUI servers first."""
        return self.backend

    @property
    def stripe_checkout_origin(self) -> str:
        """Where Stripe Checkout pages live (the fake API serves them itself in tests)."""
        if self.stripe_api_base:
            scheme, _, rest = self.stripe_api_base.partition("://")
            return f"{scheme}://{rest.split('/', 1)[0]}"
        return "https://checkout.stripe.com"

    @property
    def stripe_amounts(self) -> tuple[int, ...]:
        """The card top-ups offered, in USD cents."""
        return self.stripe_amounts_usd

    @property
    def discord_enabled(self) -> bool:
        """Discord runs when a bot token is set."""
        return self.discord_bot_token is not None

    @property
    def discord_guilds(self) -> tuple[str, ...]:
        """Guilds to register the slash commands in; empty means global commands."""
        return self.discord_guild_ids

    @property
    def telegram_enabled(self) -> bool:
        """Telegram runs when a bot token is set."""
        return self.telegram_bot_token is not None

    @property
    def base_url(self) -> str:
        """The URL at which users and backends reach this Noema."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def session_timeout(self) -> timedelta:
        """How long a session may be idle before it ends."""
        return timedelta(minutes=self.session_timeout_minutes)

    @property
    def client_keys(self) -> ClientKeys:
        """Internal API clients: key -> client name."""
        return self.internal_api_keys

    @property
    def presets(self) -> Mapping[str, Preset]:
        """The presets of NOEMA_PRESETS_FILE (none without one)."""
        return self.presets_file.presets if self.presets_file is not None else {}

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret (each internal client key on its own), for the log masker."""
        values = [*self.client_keys]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return tuple(v for v in values if v)


def load_settings(environ: Mapping[str, str] | None = None, /, **overrides: Any) -> Settings:
    """Build Settings from the environment, turning any problem into a ConfigError naming the variable."""
    env = os.environ if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise ConfigError(f"Unknown setting {unknown[0]}: check the spelling (known: {', '.join(sorted(known))}).")
    try:
        if environ is None:
            return Settings(**overrides)
        values = {k[len(ENV_PREFIX) :].lower(): v for k, v in environ.items() if k in known}
        return Settings(_env_file=None, **{**values, **overrides})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{ENV_PREFIX}{field.upper()}: {message}" if field else message)
    return "Invalid configuration: " + "; ".join(lines)
