"""Your defaults for a tool (``/api/v1/preferences/{toolId}``): filled in under what a request says."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field

from noema.domain import preferences as rules
from noema.entrypoints.http.deps import CatalogDep, ClockDep, CurrentAccount, UowDep
from noema.entrypoints.http.schemas import ApiModel
from noema.services import preferences

router = APIRouter()
ToolId = Annotated[str, Path(max_length=100, description="A tool id or command name.")]


class PreferencesIn(ApiModel):
    """The defaults to keep: input name -> value (every other default is removed)."""

    inputs: dict[str, str | int | float | bool | None] = Field(max_length=50)


class PreferencesOut(ApiModel):
    """Your defaults for one tool, and which inputs can have one."""

    tool_id: str
    inputs: dict[str, Any]
    settable: list[str]


@router.get("/preferences/{tool_id}", response_model=PreferencesOut)
async def get_preferences(
    tool_id: ToolId, account_id: CurrentAccount, uow: UowDep, catalog: CatalogDep
) -> PreferencesOut:
    """Your defaults for the tool."""
    tool = await catalog.find(tool_id)
    values = await preferences.get(uow, account_id, tool)
    return PreferencesOut(tool_id=tool.id, inputs=values, settable=rules.settable(tool))


@router.put("/preferences/{tool_id}", response_model=PreferencesOut)
async def put_preferences(
    tool_id: ToolId, body: PreferencesIn, account_id: CurrentAccount, uow: UowDep, clock: ClockDep, catalog: CatalogDep
) -> PreferencesOut:
    """Replace your defaults for the tool; each value is checked against the tool's inputs (400 if one is bad)."""
    tool = await catalog.find(tool_id)
    values = await preferences.replace(uow, clock, account_id, tool, body.inputs)
    return PreferencesOut(tool_id=tool.id, inputs=values, settable=rules.settable(tool))
