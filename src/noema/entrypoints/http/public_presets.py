"""Presets over the public API: list them, run one with the features you want."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from pydantic import Field

from noema.entrypoints.http.deps import CurrentAccount, GenerationsDep, PresetsDep
from noema.entrypoints.http.generation_schemas import GenerationOut, generation_out
from noema.entrypoints.http.schemas import ApiModel

router = APIRouter(tags=["presets"])
Command = Annotated[str, Path(max_length=32, description="The preset's command name.")]


class PresetOut(ApiModel):
    """A preset: its command, what it is for, its optional features and what you may set."""

    command: str
    description: str
    features: dict[str, str]  #: feature -> the image input it needs
    user_inputs: list[str] | None


class PresetRunIn(ApiModel):
    """Inputs (images as data: URIs or public URLs) and the features to switch on."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    features: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=8)
    machine: Annotated[str | None, Field(max_length=64, description="Run on this machine id or GPU only.")] = None


@router.get("/presets", response_model=list[PresetOut])
async def list_presets(_: CurrentAccount, presets: PresetsDep) -> list[PresetOut]:
    """Every preset the operator set up."""
    return [
        PresetOut(
            command=p.command,
            description=p.description,
            features=dict(p.features),
            user_inputs=sorted(p.user_inputs) if p.user_inputs is not None else None,
        )
        for p in (await presets.all()).values()
    ]


@router.post("/presets/{command}/generations", response_model=GenerationOut, status_code=202)
async def run_preset(
    command: Command,
    body: PresetRunIn,
    account_id: CurrentAccount,
    presets: PresetsDep,
    generations: GenerationsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> GenerationOut:
    """Run a preset: its variant for these features, its defaults under your inputs, the next tool if one fails."""
    request = await presets.request(
        command,
        body.features,
        account_id=account_id,
        inputs=body.inputs,
        machine=body.machine,
        platform="api",
        idempotency_key=idempotency_key,
    )
    return generation_out(await generations.request(request))
