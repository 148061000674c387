"""Settings: the one place that reads the environment (``NOEMA_*`` variables and ``.env``)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from noema.domain.errors import InvalidInput
from noema.domain.payments import parse_amounts
from noema.domain.stars import parse_packages, parse_rate

ENV_PREFIX = "NOEMA_"
_CLIENT_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")
_DISCORD_FORMATS = {
    "discord_application_id": (r"^\d{1,25}$", "must be the application's numeric id (a snowflake of digits)"),
    "discord_public_key": (r"^[0-9a-fA-F]{64}$", "must be the application's public key: 64 hexadecimal characters"),
}


class ConfigError(Exception):
    """The configuration is not usable; the message names the variable."""


class BackendKind(str, Enum):
    SANDBOX = "sandbox"
    COMFYDEPLOY = "comfydeploy"
    COMFYUI = "comfyui"


class TelegramMode(str, Enum):
    WEBHOOK = "webhook"  #: updates arrive at POST /api/webhook/telegram (production)
    POLLING = "polling"  #: Noema asks with getUpdates (development, no public URL needed)


class LogFormat(str, Enum):
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    """Every setting of Noema, typed and validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="forbid", frozen=True
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
    internal_api_keys: SecretStr = SecretStr("")
    session_timeout_minutes: int = Field(default=30, ge=1, le=60 * 24 * 30)
    migrate_on_start: bool = True
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.CONSOLE
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    workers_enabled: bool = True
    metrics_token: SecretStr | None = None  #: Bearer token for /metrics; unset: loopback clients only

    #: one backend, or ``comfyui,comfydeploy`` / ``comfyui,sandbox``: own servers first, the cloud beside them
    backend: str = "sandbox"
    comfydeploy_api_key: SecretStr | None = None
    comfydeploy_base_url: str = "https://api.comfydeploy.com/api"
    comfydeploy_webhooks: bool = True
    comfydeploy_max_rps: float = Field(default=20.0, gt=0, le=1000)
    sandbox_run_seconds: float = Field(default=3.0, gt=0, le=600)
    sandbox_faults: str = ""
    sandbox_data_dir: str = "./sandbox-data"
    sandbox_api_key: SecretStr | None = None
    sandbox_signups_per_hour: int = Field(default=3, ge=1, le=100_000)  #: "Try the sandbox" accounts per address
    max_concurrent_runs: int = Field(default=3, ge=1, le=100)
    max_runs_per_minute: int = Field(default=20, ge=1, le=10_000)
    catalog_ttl_seconds: float = Field(default=300, ge=5)
    poll_seconds: float = Field(default=20, gt=0, le=3600)
    quiet_seconds: float = Field(default=60, gt=0, le=3600)
    gpu_rates: str = ""
    tool_overrides: str = ""
    presets_file: str | None = None
    max_loras_per_prompt: int = Field(default=5, ge=0, le=20)
    media_hosts: str | None = None
    link_guesses_per_account: int = Field(default=5, ge=1, le=1000)
    link_guesses_overall: int = Field(default=200, ge=1, le=1_000_000)
    lora_cache_seconds: float = Field(default=60, ge=0, le=3600)

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_mode: TelegramMode = TelegramMode.WEBHOOK
    telegram_webhook_secret: SecretStr | None = None

    comfyui_servers: str = ""  #: ``URL=GPU,URL=GPU`` (NOEMA_BACKEND=comfyui)
    comfyui_slots: int = Field(default=2, ge=1, le=100)
    comfyui_workflows_dir: str = "./workflows"
    #: hosts whose public picture links a ComfyUI run may take as inputs (as NOEMA_MEDIA_HOSTS); unset: none
    comfyui_input_hosts: str | None = None
    media_dir: str = "./media"
    media_retention_days: int = Field(default=30, ge=1, le=3650)

    discord_bot_token: SecretStr | None = None
    discord_application_id: str | None = None
    discord_public_key: str | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  #: tests only: the fake Stripe API
    stripe_amounts_usd: str = "5,10,25"
    stars_packages: str = "50,100,250,500"  #: Telegram Stars packages /topup offers
    stars_usd: str = "0.013"  #: USD of credit per Telegram Star
    max_open_payments: int = Field(default=5, ge=1, le=100)  #: unpaid checkouts (and Stars invoices) per account
    paysupport_text: str = (
        "For help with a payment, write to the operator of this bot and include the payment id"
        " from your receipt. Refunds of Telegram Stars are made by the operator."
    )
    discord_guild_ids: str = ""

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

    @field_validator("internal_api_keys")
    @classmethod
    def _keys_well_formed(cls, value: SecretStr) -> SecretStr:
        parse_client_keys(value.get_secret_value())
        return value

    @field_validator("comfydeploy_base_url")
    @classmethod
    def _backend_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", value):
            raise ValueError("must be an http(s) URL such as https://api.comfydeploy.com/api")
        return value.rstrip("/")

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_list(cls, value: object) -> str:
        raw = value.value if isinstance(value, BackendKind) else str(value)
        return ",".join(kind.value for kind in parse_backends(raw))

    @field_validator("presets_file")
    @classmethod
    def _presets(cls, value: str | None) -> str | None:
        if not value:
            return None
        load_presets(value)
        return value

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

    @field_validator("stripe_amounts_usd")
    @classmethod
    def _stripe_amounts(cls, value: str) -> str:
        try:
            parse_amounts(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("stars_packages")
    @classmethod
    def _stars_packages(cls, value: str) -> str:
        try:
            parse_packages(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("stars_usd")
    @classmethod
    def _stars_usd(cls, value: str) -> str:
        try:
            parse_rate(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("stripe_api_base")
    @classmethod
    def _stripe_base(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("discord_guild_ids")
    @classmethod
    def _discord_guilds(cls, value: str) -> str:
        parse_guild_ids(value)
        return value

    @field_validator("sandbox_faults")
    @classmethod
    def _faults(cls, value: str) -> str:
        from noema.adapters.backends.sandbox import parse_faults

        parse_faults(value)
        return value

    @field_validator("media_hosts", "comfyui_input_hosts")
    @classmethod
    def _media_hosts(cls, value: str | None) -> str | None:
        from noema.adapters.platforms.result_fetch import parse_hosts

        if value is not None:
            parse_hosts(value)
        return value

    @field_validator("comfyui_servers")
    @classmethod
    def _comfyui_servers(cls, value: str) -> str:
        parse_comfyui_servers(value)
        return value

    @field_validator("gpu_rates")
    @classmethod
    def _rates(cls, value: str) -> str:
        parse_gpu_rates(value)
        return value

    @field_validator("tool_overrides")
    @classmethod
    def _overrides(cls, value: str) -> str:
        parse_tool_overrides(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.public_url is None:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.port}")
        if BackendKind.COMFYDEPLOY in self.backends and not (
            self.comfydeploy_api_key and self.comfydeploy_api_key.get_secret_value()
        ):
            raise ValueError("NOEMA_COMFYDEPLOY_API_KEY is required when NOEMA_BACKEND=comfydeploy")
        if BackendKind.COMFYUI in self.backends and not parse_comfyui_servers(self.comfyui_servers):
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
        return parse_backends(self.backend)

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
        return parse_amounts(self.stripe_amounts_usd)

    @property
    def discord_enabled(self) -> bool:
        """Discord runs when a bot token is set."""
        return self.discord_bot_token is not None

    @property
    def discord_guilds(self) -> tuple[str, ...]:
        """Guilds to register the slash commands in; empty means global commands."""
        return parse_guild_ids(self.discord_guild_ids)

    @property
    def telegram_enabled(self) -> bool:
        """Telegram runs when a bot token is set."""
        return self.telegram_bot_token is not None

    @property
    def base_url(self) -> str:
        """The URL at which users and backends reach this Noema."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def client_keys(self) -> dict[str, str]:
        """Internal API clients: key -> client name."""
        return parse_client_keys(self.internal_api_keys.get_secret_value())

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret (each internal client key on its own), for the log masker."""
        values = [*self.client_keys]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and name != "internal_api_keys":
                values.append(value.get_secret_value())
        return tuple(v for v in values if v)


def parse_client_keys(raw: str) -> dict[str, str]:
    """Parse ``name:key,name:key`` into {key: name}; refuse short keys, bad names and duplicates."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, key = item.partition(":")
        if not sep or not _CLIENT_NAME.match(name):
            raise ValueError("each entry must be name:key with a lower-case name (e.g. admin:k3y...)")
        if len(key) < 16:
            raise ValueError(f"the key of client {name!r} must be at least 16 characters")
        if key in result:
            raise ValueError(f"two clients share the key of client {name!r}")
        result[key] = name
    return result


def parse_guild_ids(raw: str) -> tuple[str, ...]:
    """``123,456`` into ("123", "456"): Discord guild ids, digits only, each once."""
    ids: list[str] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        if not re.match(r"^\d{1,25}$", item):
            raise ValueError(f"{item[:30]!r} is not a guild id (a snowflake of digits)")
        if item not in ids:
            ids.append(item)
    return tuple(ids)


def parse_gpu_rates(raw: str) -> dict[str, str]:
    """``H200=0.003,A10G=0.0004`` into {GPU: rate}; rates are USD per second, non-negative decimals."""
    rates: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        gpu, sep, rate = item.partition("=")
        if not sep or not re.match(r"^[A-Za-z0-9\-]{1,32}$", gpu.strip()):
            raise ValueError(f"{item[:40]!r} is not GPU=rate (e.g. H200=0.003)")
        if not re.match(r"^\d+(\.\d{1,9})?$", rate.strip()):
            raise ValueError(f"the rate of {gpu.strip()} must be a non-negative decimal in USD per second")
        rates[gpu.strip().upper()] = rate.strip()
    return rates


def parse_comfyui_servers(raw: str) -> list[tuple[str, str | None]]:
    """``http://a:8188=A10G,http://b:8188`` into [(URL, GPU or None)]; each URL once, http(s) only."""
    servers: list[tuple[str, str | None]] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        url, sep, gpu = item.rpartition("=")
        if not sep or "/" in gpu:
            url, gpu = item, ""
        url, gpu = url.strip().rstrip("/"), gpu.strip()
        if not re.match(r"^https?://[^\s/?#=]+(/[^\s?#=]*)?$", url):
            raise ValueError(f"{item[:60]!r} is not URL=GPU (e.g. http://10.0.0.5:8188=A10G)")
        if gpu and not re.match(r"^[A-Za-z0-9\-]{1,32}$", gpu):
            raise ValueError(f"the GPU of {url[:60]} must be a GPU name such as A10G")
        if any(known == url for known, _ in servers):
            raise ValueError(f"{url[:60]} is listed twice")
        servers.append((url, gpu.upper() or None))
    return servers


def parse_tool_overrides(raw: str) -> dict[str, dict[str, Any]]:
    """A JSON object: tool id or command -> overrides (checked again when the catalog is built)."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    allowed = {
        "command",
        "visibility",
        "priority",
        "price_multiplier",
        "flat_price_usd",
        "expected_seconds",
        "max_seconds",
        "defaults",
        "bounds",
        "display_name",
        "description",
        "base_model",
    }
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError('must be a JSON object such as {"txt2img": {"priority": 10}}')
    for name, fields in data.items():
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"tool {name!r}: unknown override {sorted(unknown)[0]!r}")
    return data


def load_presets(path: str) -> dict[str, Any]:
    """The presets in a TOML file (``NOEMA_PRESETS_FILE``); ValueError saying what is wrong."""
    from noema.domain.presets import parse_presets

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1_000_000)
    except OSError as exc:
        raise ValueError(f"cannot read {path!r} ({exc.strerror})") from None
    return dict(parse_presets(text))


_CLOUDS = (BackendKind.COMFYDEPLOY, BackendKind.SANDBOX)


def parse_backends(raw: str) -> tuple[BackendKind, ...]:
    """``NOEMA_BACKEND``: one backend, or ComfyUI with one cloud (either order); ValueError names a bad one."""
    names = [part.strip().lower() for part in raw.split(",")]
    known = {kind.value: kind for kind in BackendKind}
    for name in names:
        if name not in known:
            raise ValueError(f"unknown backend {name!r}: use sandbox, comfydeploy, comfyui, or comfyui,comfydeploy")
    kinds = [known[name] for name in names]
    if len(set(kinds)) < len(kinds):
        raise ValueError("a backend is named twice")
    if len(kinds) == 1:
        return (kinds[0],)
    clouds = [kind for kind in kinds if kind in _CLOUDS]
    if len(kinds) != 2 or BackendKind.COMFYUI not in kinds:
        raise ValueError("two backends are ComfyUI and one cloud: comfyui,comfydeploy or comfyui,sandbox")
    return (BackendKind.COMFYUI, clouds[0])


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
