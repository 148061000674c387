"""The tool catalog: deployed workflows turned into priced, uniquely named tools (pure).

``build_catalog`` never raises on odd backend data: what it cannot understand it skips, and
``tool.extra`` says why (``skipped_inputs``, ``notes``, ``override_warnings``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from noema.domain.base_models import base_model_of
from noema.domain.catalog_graph import (
    DESCRIPTION_MAX_LENGTH,
    description_from_notes,
    input_specs_from_graph,
    output_kinds,
    primary_input_of,
    tool_inputs,
    unlisted_graph_inputs,
)
from noema.domain.catalog_names import assign_commands, command_name
from noema.domain.catalog_overrides import apply_override, explicit_command, match_overrides
from noema.domain.input_bounds import bound_open_inputs
from noema.domain.pricing import rate_for
from noema.domain.runs import DeploymentInfo, MachineInfo, OutputKind, WorkflowVersionInfo
from noema.domain.tools import PrimaryInput, Tool, ToolOverride, Visibility

__all__ = ["build_catalog", "command_name", "primary_input_of"]

_MAX_DISPLAY_NAME = 100
_UNREADABLE = "The backend's description of this deployment could not be read."


@dataclass(frozen=True)
class _Draft:
    """A tool before naming and overrides, with the reason it cannot be priced, if any."""

    tool: Tool
    price_problem: str | None = None
    broken: bool = False
    problem: str | None = None  #: the backend cannot run it at all (no server has what it needs)


def build_catalog(
    deployments: Iterable[DeploymentInfo],
    machines: Iterable[MachineInfo],
    versions: Mapping[str, WorkflowVersionInfo],
    *,
    rates: Mapping[str, int],
    overrides: Mapping[str, ToolOverride] | None = None,
    backend_label: str = "",
) -> list[Tool]:
    """Build the tools of a backend's deployments, sorted by (-priority, command)."""
    unique = _unique_deployments(deployments)
    machine_by_id = _machines_by_id(machines)
    drafts = {d.id: _draft(d, machine_by_id, versions, rates, backend_label) for d in unique}
    names = {d.id: drafts[d.id].tool.display_name for d in unique}
    matched = match_overrides(assign_commands(names), overrides or {})
    warnings: dict[str, list[str]] = {tool_id: list(found.warnings) for tool_id, found in matched.items()}
    explicit: dict[str, str] = {}
    for tool_id, found in matched.items():
        command = explicit_command(found.override, warnings[tool_id])
        if command is not None:
            explicit[tool_id] = command
    commands = assign_commands(names, explicit)
    for tool_id, wanted in explicit.items():
        if commands[tool_id] != wanted:
            warnings[tool_id].append(f"command {wanted!r} is taken by another tool; using {commands[tool_id]!r}")
    tools = [
        _finish(drafts[d.id], commands[d.id], matched[d.id].override if d.id in matched else None, warnings.get(d.id))
        for d in unique
    ]
    return sorted(_with_stand_ins(tools, unique), key=lambda tool: (-tool.priority, tool.command))


def _with_stand_ins(tools: list[Tool], deployments: list[DeploymentInfo]) -> list[Tool]:
    """Each tool with the ids of the deployments that stand in for it (the same workflow on another backend).

    Only one that takes the same inputs stands in (one workflow file deployed on both backends does).
    """
    by_id = {t.id: t for t in tools}
    stand_ins: dict[str, list[str]] = {}
    unfit: set[str] = set()
    for d in deployments:
        main = by_id.get(d.stands_in_for) if isinstance(d.stands_in_for, str) else None
        if main is None or d.id == main.id:
            continue
        if _fills(main, by_id[d.id]):
            stand_ins.setdefault(main.id, []).append(d.id)
        else:
            unfit.add(d.id)
    result = []
    for t in tools:
        if t.id in stand_ins:
            t = replace(t, stand_ins=tuple(stand_ins[t.id]))
        if t.id in unfit:
            notes = [*t.extra.get("notes", []), "not a stand-in: its inputs differ from the tool of the same name"]
            t = replace(t, extra={**t.extra, "notes": notes})
        result.append(t)
    return result


def _fills(main: Tool, stand_in: Tool) -> bool:
    """Whether both take the same inputs (names and types): the values checked for one suit the other."""
    return {i.name: i.type for i in main.inputs} == {i.name: i.type for i in stand_in.inputs}


def _finish(draft: _Draft, command: str, override: ToolOverride | None, warnings: list[str] | None) -> Tool:
    warnings = warnings if warnings is not None else []
    tool = replace(draft.tool, command=command)
    if override is not None:
        tool = apply_override(tool, override, warnings)
    extra = dict(tool.extra)
    if warnings:
        extra["override_warnings"] = warnings
    if draft.broken:
        return replace(tool, enabled=False, disabled_reason=_UNREADABLE, extra=extra)
    if draft.problem is not None:
        return replace(tool, enabled=False, disabled_reason=draft.problem, extra=extra)
    # A flat price makes the GPU rate irrelevant; without one, an unpriced tool is never offered.
    if draft.price_problem is not None and tool.flat_price_nanos is None:
        return replace(tool, enabled=False, disabled_reason=draft.price_problem, extra=extra)
    return replace(tool, enabled=True, disabled_reason=None, extra=extra)


def _unique_deployments(deployments: Iterable[DeploymentInfo]) -> list[DeploymentInfo]:
    usable = [d for d in deployments if isinstance(d, DeploymentInfo) and isinstance(d.id, str) and d.id.strip()]
    # Sorting on more than the id keeps the choice between two records with one id order-independent.
    usable.sort(key=lambda d: (d.id, _tie_break(d)))
    unique: dict[str, DeploymentInfo] = {}
    for deployment in usable:
        unique.setdefault(deployment.id, deployment)
    return list(unique.values())


def _machines_by_id(machines: Iterable[MachineInfo]) -> dict[str, MachineInfo]:
    usable = [m for m in machines if isinstance(m, MachineInfo) and isinstance(m.id, str)]
    result: dict[str, MachineInfo] = {}
    for machine in sorted(usable, key=lambda m: (m.id, _tie_break(m))):
        result.setdefault(machine.id, machine)
    return result


def _draft(
    deployment: DeploymentInfo,
    machines: Mapping[str, MachineInfo],
    versions: Mapping[str, WorkflowVersionInfo],
    rates: Mapping[str, int],
    backend_label: str,
) -> _Draft:
    machine = machines.get(deployment.machine_id) if isinstance(deployment.machine_id, str) else None
    gpu = machine.gpu.strip().upper() if machine and isinstance(machine.gpu, str) and machine.gpu.strip() else None
    rate = rate_for(gpu, rates)
    base = Tool(
        id=deployment.id,
        command="",
        display_name=_display_name(deployment),
        description="",
        inputs=(),
        primary_input=PrimaryInput.NONE,
        output_kind=None,
        deployment_id=deployment.id,
        machine_id=machine.id if machine else _str_or_none(deployment.machine_id),
        gpu=gpu,
        rate_nanos_per_second=rate,
        category="other",
        workflow_id=_str_or_none(deployment.workflow_id),
        backend_label=_str_or_none(deployment.backend_label) or backend_label,
        # A stand-in is a building block: it runs for the tool it stands in for, or through a preset.
        visibility=Visibility.HIDDEN if _str_or_none(deployment.stands_in_for) else Visibility.PUBLIC,
    )
    price_problem = _price_problem(machine, gpu, rate)
    if isinstance(deployment.expected_seconds, int | float) and deployment.expected_seconds > 0:
        base = replace(base, expected_seconds=float(deployment.expected_seconds))
    if isinstance(deployment.max_seconds, int | float) and deployment.max_seconds > 0:
        base = replace(base, max_seconds=float(deployment.max_seconds))
    problem = deployment.problem[:500] if isinstance(deployment.problem, str) and deployment.problem else None
    try:
        return _Draft(_read_workflow(base, deployment, versions), price_problem, problem=problem)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # Defensive: one malformed deployment must not take the whole catalog down with it.
        extra = {"notes": [f"unreadable deployment: {type(exc).__name__}"]}
        return _Draft(replace(base, extra=extra), price_problem, broken=True)


def _read_workflow(base: Tool, deployment: DeploymentInfo, versions: Mapping[str, WorkflowVersionInfo]) -> Tool:
    notes: list[str] = []
    skipped: list[str] = []
    version = _find_version(deployment, versions, notes)
    if deployment.input_types is not None:
        source, specs = "input_types", list(deployment.input_types)
        if version is not None:
            specs += unlisted_graph_inputs(version.workflow_api, specs)
    elif version is not None:
        source, specs = "workflow_api", input_specs_from_graph(version.workflow_api, notes)
    else:
        source, specs = "none", []
        notes.append("no input list and no workflow version: the tool takes no inputs")
    inputs = bound_open_inputs(tool_inputs(specs, skipped), version.workflow_api if version else None)
    kinds = output_kinds(version.workflow_api if version else None, deployment.output_types)
    description = description_from_notes(version.workflow) if version else ""
    if not description and isinstance(deployment.description, str):
        description = _trim(deployment.description.strip(), DESCRIPTION_MAX_LENGTH)
    extra: dict[str, Any] = {"input_source": source}
    if skipped:
        extra["skipped_inputs"] = skipped
    if notes:
        extra["notes"] = notes
    return replace(
        base,
        description=description,
        inputs=inputs,
        primary_input=primary_input_of(inputs),
        output_kind=kinds[0] if len(kinds) == 1 else None,
        category=_category(kinds),
        extra=extra,
        base_model=base_model_of(version.workflow_api) if version else None,
    )


def _find_version(
    deployment: DeploymentInfo, versions: Mapping[str, WorkflowVersionInfo], notes: list[str]
) -> WorkflowVersionInfo | None:
    version_id = deployment.workflow_version_id
    found = versions.get(version_id) if isinstance(version_id, str) else None
    if isinstance(found, WorkflowVersionInfo):
        return found
    candidates = [
        v
        for v in versions.values()
        if isinstance(v, WorkflowVersionInfo) and deployment.workflow_id and v.workflow_id == deployment.workflow_id
    ]
    if not candidates:
        return None
    latest = max(candidates, key=lambda v: (v.version if isinstance(v.version, int) else -1, str(v.id)))
    notes.append(f"workflow version {_str_or_none(version_id) or '(none)'} not found; used version {latest.version}")
    return latest


def _category(kinds: list[OutputKind]) -> str:
    if not kinds:
        return "other"
    return kinds[0].value if len(kinds) == 1 else "mixed"


def _price_problem(machine: MachineInfo | None, gpu: str | None, rate: int | None) -> str | None:
    if machine is None:
        return "No machine is known for this deployment, so its GPU and price are unknown."
    if gpu is None:
        return "The deployment's machine reports no GPU, so its price is unknown."
    if rate is None:
        return f"No price is configured for GPU {gpu[:40]}; an operator must add one (NOEMA_GPU_RATES)."
    return None


def _display_name(deployment: DeploymentInfo) -> str:
    name = deployment.name.strip() if isinstance(deployment.name, str) else ""
    return _trim(name or deployment.id, _MAX_DISPLAY_NAME)


def _tie_break(value: object) -> str:
    try:
        return repr(value)
    except ValueError:  # a giant int inside cannot be printed; such a record sorts first
        return ""


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
