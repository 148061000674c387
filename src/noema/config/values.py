"""The typed values Settings parses out of the environment's text, each parsed once at start-up.

Every parser takes the variable's text and returns the value the rest of Noema uses, or raises
ValueError saying what is wrong (Settings puts the variable's name in front).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from noema.domain.errors import InvalidInput
from noema.domain.money import parse_usd
from noema.domain.presets import Preset, parse_presets
from noema.domain.pricing import parse_rates
from noema.domain.tools import ToolOverride, Visibility

_CLIENT_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")


class BackendKind(str, Enum):
    SANDBOX = "sandbox"
    COMFYDEPLOY = "comfydeploy"
    COMFYUI = "comfyui"


class ClientKeys(Mapping[str, str]):
    """The internal API's clients, key -> client name; the keys never appear in a repr."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self._names = dict(names or {})

    def __getitem__(self, key: str) -> str:
        return self._names[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"ClientKeys({', '.join(sorted(self._names.values()))})"

    def client_of(self, key: str) -> str | None:
        """The client whose key this is, compared in constant time against every key; None for no client."""
        found = None
        for known, name in self._names.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                found = name
        return found


def parse_client_keys(raw: str) -> ClientKeys:
    """Parse ``name:key,name:key``; refuse short keys, bad names and duplicates."""
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
    return ClientKeys(result)


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


def parse_rate_table(raw: str) -> Mapping[str, int]:
    """The GPU rate table, nanos per second by GPU: Noema's defaults with ``NOEMA_GPU_RATES`` over them."""
    try:
        return MappingProxyType(parse_rates(parse_gpu_rates(raw)))
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


ComfyUIServer = tuple[str, str | None]  #: (URL, GPU or None)


def parse_comfyui_servers(raw: str) -> tuple[ComfyUIServer, ...]:
    """``http://a:8188=A10G,http://b:8188`` into ((URL, GPU or None), ...); each URL once, http(s) only."""
    servers: list[ComfyUIServer] = []
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
    return tuple(servers)


_OVERRIDABLE = {
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


def parse_tool_overrides(raw: str) -> Mapping[str, ToolOverride]:
    """A JSON object: tool id or command -> overrides (checked again when the catalog is built)."""
    if not raw.strip():
        return MappingProxyType({})
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError('must be a JSON object such as {"txt2img": {"priority": 10}}')
    for name, fields in data.items():
        unknown = set(fields) - _OVERRIDABLE
        if unknown:
            raise ValueError(f"tool {name!r}: unknown override {sorted(unknown)[0]!r}")
    try:
        return MappingProxyType({name: _override(fields) for name, fields in data.items()})
    except (InvalidInput, ValueError) as exc:
        raise ValueError(exc.message if isinstance(exc, InvalidInput) else str(exc)) from None


def _override(o: Mapping[str, Any]) -> ToolOverride:
    flat = o.get("flat_price_usd")
    return ToolOverride(
        command=o.get("command"),
        visibility=Visibility(o["visibility"]) if o.get("visibility") else None,
        priority=o.get("priority"),
        price_multiplier=o.get("price_multiplier"),
        flat_price_nanos=parse_usd(str(flat), allow_zero=True) if flat is not None else None,
        expected_seconds=o.get("expected_seconds"),
        max_seconds=o.get("max_seconds"),
        defaults=dict(o.get("defaults") or {}),
        bounds=dict(o.get("bounds") or {}),
        display_name=o.get("display_name"),
        description=o.get("description"),
        base_model=o.get("base_model"),
    )


@dataclass(frozen=True)
class PresetsFile:
    """``NOEMA_PRESETS_FILE``: where the presets were read from, and what they are."""

    path: str
    presets: Mapping[str, Preset] = field(default_factory=dict, hash=False)


def load_presets(path: str) -> PresetsFile:
    """The presets in a TOML file, read once; ValueError saying what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1_000_000)
    except OSError as exc:
        raise ValueError(f"cannot read {path!r} ({exc.strerror})") from None
    return PresetsFile(path, MappingProxyType(parse_presets(text)))


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
