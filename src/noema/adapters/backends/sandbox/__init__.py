"""The sandbox backend: a local server speaking ComfyDeploy's V2 API, rendering real images with Pillow.

Noema runs against it with no account anywhere, and its ComfyDeploy client is contract-tested
against it. Mount ``SandboxServer(...).app`` in another app (then call ``start``/``stop``), or run
``create_standalone_app(config)`` on its own port.
"""

from __future__ import annotations

from noema.adapters.backends.sandbox.app import SandboxServer, create_standalone_app
from noema.adapters.backends.sandbox.catalog_data import CATALOG, DEPLOYMENT_IDS
from noema.adapters.backends.sandbox.config import SandboxConfig, new_api_key
from noema.config.sandbox_faults import FAULT_NAMES, Fault, parse_faults

__all__ = [
    "CATALOG",
    "DEPLOYMENT_IDS",
    "FAULT_NAMES",
    "Fault",
    "SandboxConfig",
    "SandboxServer",
    "create_standalone_app",
    "new_api_key",
    "parse_faults",
]
