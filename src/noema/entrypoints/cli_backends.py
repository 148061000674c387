"""``noema backends``: each ComfyUI server (up or down and why, GPU, queue, Noema's runs, tools), or the one backend.

The command reaches the container through the ``CliRuntime`` that ``noema.entrypoints.cli`` puts in
the command context, like ``noema loras``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer

from noema.adapters.backends.comfyui.status import ServerStatus
from noema.bootstrap import Container
from noema.domain.errors import ExternalServiceError
from noema.entrypoints.cli_loras import CliRuntime
from noema.entrypoints.cli_output import JSON_HELP, emit_json, print_rows

backends_app = typer.Typer(help="The backends Noema runs tools on, and whether they answer.")


@dataclass(frozen=True)
class Answer:
    """A backend that is not a ComfyUI pool: its name and whether it answers (None: it does)."""

    label: str
    problem: str | None


@backends_app.callback(invoke_without_command=True)
def backends(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List each ComfyUI server: up or down and why, GPU, queue, Noema's runs there, the tools it can run."""
    runtime: CliRuntime = ctx.obj

    async def work(c: Container) -> list[ServerStatus] | Answer:
        if c.comfyui is not None:
            return await c.comfyui.status()
        label = c.backend.label
        try:
            await c.backend.list_machines()
        except ExternalServiceError as exc:
            return Answer(label, exc.message[:200])
        return Answer(label, None)

    found = runtime.run(work)
    if as_json:
        emit_json({"items": _json(found)})
        return
    if isinstance(found, Answer):
        state = "answers" if found.problem is None else f"does not answer: {found.problem}"
        runtime.out.print(f"{found.label}: {state}", markup=False, highlight=False, soft_wrap=True)
        return
    rows = [
        [
            s.url,
            "up" if s.up else f"down: {s.reason}",
            _gpu(s),
            str(s.running) if s.up else "-",
            str(s.pending) if s.up else "-",
            str(s.noema) if s.up else "-",
            _tools(s),
        ]
        for s in found
    ]
    columns = ("server", "state", "GPU", "running", "pending", "Noema's", "tools")
    print_rows(runtime.out, f"{len(found)} ComfyUI servers", columns, rows, whole={"server"})


def _json(found: list[ServerStatus] | Answer) -> list[dict[str, Any]]:
    """The backends as ``--json`` prints them."""
    if isinstance(found, Answer):
        return [{"backend": found.label, "up": found.problem is None, "reason": found.problem or "up"}]
    return [
        {
            "backend": "comfyui",
            "url": s.url,
            "up": s.up,
            "reason": s.reason,
            "gpu": s.gpu,
            "devices": list(s.devices),
            "running": s.running,
            "pending": s.pending,
            "noema": s.noema,
            "tools": [{"name": name, "problem": problem} for name, problem in s.tools],
        }
        for s in found
    ]


def _gpu(s: ServerStatus) -> str:
    configured = s.gpu or "none (no price)"
    return f"{configured} [{', '.join(s.devices)}]" if s.devices else configured


def _tools(s: ServerStatus) -> str:
    if not s.up:
        return "none while down"
    lines = [name if problem is None else f"{name}: cannot ({problem})" for name, problem in s.tools]
    return "\n".join(lines) or "no workflows"
