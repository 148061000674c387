"""Internal API: presets defined at run time (the admin client only); file presets are listed, not changed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response

from noema.domain.presets import Preset
from noema.entrypoints.http.deps import PresetsDep, require_presets_admin
from noema.entrypoints.http.schemas import ApiModel

router = APIRouter(tags=["presets"], dependencies=[Depends(require_presets_admin)])
Command = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="The preset's command name.")]


class InternalPresetOut(ApiModel):
    command: str
    description: str
    tools: list[str]
    selection: str
    features: dict[str, str]
    variants: dict[str, list[str]]
    user_inputs: list[str] | None
    defaults: dict[str, Any]
    source: str  #: "file" (NOEMA_PRESETS_FILE) or "api"


def _out(p: Preset, source: str) -> InternalPresetOut:
    return InternalPresetOut(
        command=p.command,
        description=p.description,
        tools=list(p.tools),
        selection=p.selection.value,
        features=dict(p.features),
        variants={"+".join(sorted(k)): list(v) for k, v in p.variants.items()},
        user_inputs=sorted(p.user_inputs) if p.user_inputs is not None else None,
        defaults=dict(p.defaults),
        source=source,
    )


@router.get("/presets", response_model=list[InternalPresetOut])
async def list_presets(presets: PresetsDep) -> list[InternalPresetOut]:
    """Every preset, from the file and from this API."""
    book = presets
    return [_out(p, "file" if name in book.from_file else "api") for name, p in sorted((await book.all()).items())]


@router.put("/presets/{command}", response_model=InternalPresetOut)
async def put_preset(
    command: Command,
    presets: PresetsDep,
    body: Annotated[dict[str, Any], Body(description="The preset's settings, as in a TOML [presets.<command>] table.")],
) -> InternalPresetOut:
    """Create or replace a preset (400 with the reason if it is not valid; 409 for a file preset's name)."""
    return _out(await presets.define(command, body), "api")


@router.delete("/presets/{command}", status_code=204)
async def delete_preset(command: Command, presets: PresetsDep) -> Response:
    """Remove a preset defined through this API."""
    await presets.remove(command)
    return Response(status_code=204)
