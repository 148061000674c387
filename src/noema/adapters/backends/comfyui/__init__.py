"""The self-hosted ComfyUI backend: an HTTP client per server, its websocket events and their fold."""

from __future__ import annotations

from noema.adapters.backends.comfyui.client import ComfyUIClient
from noema.adapters.backends.comfyui.events import EventListener, parse_event
from noema.adapters.backends.comfyui.models import (
    InputSpec,
    NodeInfo,
    OutputKind,
    PromptOutput,
    PromptResult,
    PromptStatus,
    QueueState,
    SystemStats,
)
from noema.adapters.backends.comfyui.progress import PromptState, apply_event, fold_events

__all__ = [
    "ComfyUIClient",
    "EventListener",
    "InputSpec",
    "NodeInfo",
    "OutputKind",
    "PromptOutput",
    "PromptResult",
    "PromptState",
    "PromptStatus",
    "QueueState",
    "SystemStats",
    "apply_event",
    "fold_events",
    "parse_event",
]
