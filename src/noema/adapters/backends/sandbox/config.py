"""How a sandbox server is set up: where it lives, how long runs take, which faults it injects."""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from noema.config.sandbox_faults import Fault, check_probability

#: The largest file ``POST /api/file/upload`` accepts by default: 20 MiB, the largest input image the
#: sandbox reads (``fetch.MAX_FETCH_BYTES``) and the web form's limit.
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def new_api_key() -> str:
    """A random sandbox API key (used when none is configured: a new one at every start)."""
    return "sbx_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SandboxConfig:
    """The settings of one sandbox server."""

    #: absolute URL where this app is reachable; file URLs are built from it
    public_base_url: str
    #: run records (JSON) and files live here
    data_dir: Path
    #: total duration of a successful run
    run_seconds: float = 3.0
    #: fault name -> probability in [0, 1]
    faults: Mapping[str, float] = field(default_factory=dict, hash=False)
    #: the bearer token every ``/api`` request must carry; random per start unless configured
    api_key: str = field(default_factory=new_api_key, repr=False)
    #: webhooks may only go to URLs under this one (same scheme, host, port, path prefix); None: no webhooks
    webhook_base: str | None = None
    #: seeds the fault dice so tests are reproducible
    seed: int | None = None
    #: the largest upload accepted
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def __post_init__(self) -> None:
        base = self.public_base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"public_base_url must be an absolute http(s) URL, got {self.public_base_url!r}.")
        if not math.isfinite(self.run_seconds) or self.run_seconds <= 0:
            raise ValueError(f"run_seconds must be a positive number, got {self.run_seconds!r}.")
        if self.max_upload_bytes <= 0:
            raise ValueError("max_upload_bytes must be positive.")
        if not self.api_key.strip():
            raise ValueError("api_key must not be empty.")
        if self.webhook_base is not None and not self.webhook_base.startswith(("http://", "https://")):
            raise ValueError(f"webhook_base must be an absolute http(s) URL, got {self.webhook_base!r}.")
        faults = {name: check_probability(name, value) for name, value in self.faults.items()}
        # Frozen dataclass: normalise through object.__setattr__ once, at construction.
        object.__setattr__(self, "public_base_url", base)
        object.__setattr__(self, "api_key", self.api_key.strip())
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "faults", MappingProxyType(faults))


class Dice:
    """The seeded source of every random choice the sandbox makes (faults, seeds)."""

    def __init__(self, faults: Mapping[str, float], seed: int | None) -> None:
        self._faults = dict(faults)
        self._rng = random.Random(seed)

    def hit(self, fault: Fault) -> bool:
        """Roll for one fault; faults that are not configured never roll, so they use no randomness."""
        probability = self._faults.get(fault.value, 0.0)
        if probability <= 0.0:
            return False
        return self._rng.random() < probability

    def coin(self) -> bool:
        """A fair coin."""
        return self._rng.random() < 0.5

    def seed(self) -> int:
        """A fresh ComfyUI seed for runs that asked for a random one."""
        return self._rng.randrange(0, 2**32)
