"""Settings, the one place that reads the environment; each value is parsed once, at start-up."""

from __future__ import annotations

from noema.config.settings import ConfigError, LogFormat, Settings, TelegramMode, load_settings
from noema.config.values import BackendKind

__all__ = ["BackendKind", "ConfigError", "LogFormat", "Settings", "TelegramMode", "load_settings"]
