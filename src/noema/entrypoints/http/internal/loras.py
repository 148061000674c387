"""Internal API: the LoRA library. Only the admin client may read or change it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import Field, StrictBool, StrictFloat, StrictStr

from noema.domain.errors import InvalidInput
from noema.domain.loras import Lora, parse_lora_file
from noema.entrypoints.http.deps import LorasDep, PagingDep, require_lora_admin
from noema.entrypoints.http.schemas import ApiModel, PageOut, page_out
from noema.ports import LoraRecord
from noema.services.loras import SaveOutcome

router = APIRouter(tags=["loras"], dependencies=[Depends(require_lora_admin)])
Slug = Annotated[str, Path(min_length=1, max_length=100, description="The LoRA's slug (any case).")]


class CognateIn(ApiModel):
    word: StrictStr
    replace_with: StrictStr


class LoraIn(ApiModel):
    """One LoRA, checked by the same rules as an entry of an import file."""

    slug: StrictStr
    family: StrictStr = Field(description="SD1.5, SDXL, PONY, FLUX, SD3 or SD1.5-XL.")
    display_name: StrictStr | None = None
    triggers: list[StrictStr] | None = None
    cognates: list[CognateIn] | None = None
    default_weight: StrictFloat | None = None
    owner_id: StrictStr | None = None
    visibility: StrictStr | None = Field(default=None, description="public (default), private or allowed.")
    allowed_accounts: list[StrictStr] | None = None
    enabled: StrictBool | None = None


class CognateOut(ApiModel):
    word: str
    replace_with: str


class LoraOut(ApiModel):
    slug: str
    display_name: str
    triggers: list[str]
    cognates: list[CognateOut]
    default_weight: float
    family: str
    owner_id: str | None
    visibility: str
    allowed_accounts: list[str]
    enabled: bool
    usage_count: int
    created_at: datetime
    updated_at: datetime


class SavedLoraOut(ApiModel):
    lora: LoraOut
    outcome: SaveOutcome


class ImportOut(ApiModel):
    added: int
    updated: int
    unchanged: int
    total: int


def lora_out(record: LoraRecord) -> LoraOut:
    """The JSON of a stored LoRA."""
    lora = record.lora
    return LoraOut(
        slug=lora.slug,
        display_name=lora.display_name,
        triggers=list(lora.triggers),
        cognates=[CognateOut(word=c.word, replace_with=c.replace_with) for c in lora.cognates],
        default_weight=lora.default_weight,
        family=lora.family.value,
        owner_id=lora.owner_id,
        visibility=lora.visibility.value,
        allowed_accounts=sorted(lora.allowed_accounts),
        enabled=lora.enabled,
        usage_count=lora.usage_count,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _one(body: LoraIn) -> Lora:
    """The LoRA of a body, by the import file's rules (its messages speak of "the LoRA")."""
    try:
        return parse_lora_file([body.model_dump(by_alias=True, exclude_none=True)])[0]
    except InvalidInput as exc:
        field = (exc.details or {}).get("field")
        message = exc.message.replace("LoRA entry 1", "The LoRA", 1)
        raise InvalidInput(message, details={"field": field} if field else None) from None


@router.get("/loras", response_model=PageOut[LoraOut])
async def list_loras(
    loras: LorasDep,
    page: PagingDep,
    enabled: Annotated[bool | None, Query(description="Only enabled (true) or switched-off (false) LoRAs.")] = None,
) -> PageOut[LoraOut]:
    """The LoRA library in slug order."""
    result = await loras.page(limit=page.limit, cursor=page.cursor, enabled=enabled)
    return page_out(result, lora_out)


@router.post("/loras", response_model=SavedLoraOut, status_code=200, responses={201: {"model": SavedLoraOut}})
async def save_lora(body: LoraIn, loras: LorasDep, response: Response) -> SavedLoraOut:
    """Add a LoRA (201) or update the one with its slug (200); its usage count is kept."""
    saved = await loras.save(_one(body))
    if saved.outcome is SaveOutcome.ADDED:
        response.status_code = 201
    return SavedLoraOut(lora=lora_out(saved.record), outcome=saved.outcome)


@router.post("/loras/import", response_model=ImportOut)
async def import_loras(
    loras: LorasDep,
    body: Annotated[
        dict[str, Any] | list[Any],
        Body(description='The import file: a list of LoRA objects, or {"loras": [...]}.'),
    ],
) -> ImportOut:
    """Add or update every LoRA of an import file at once; the same file again changes nothing."""
    summary = await loras.import_loras(parse_lora_file(body))
    return ImportOut(added=summary.added, updated=summary.updated, unchanged=summary.unchanged, total=summary.total)


@router.get("/loras/{slug}", response_model=LoraOut)
async def get_lora(slug: Slug, loras: LorasDep) -> LoraOut:
    """One LoRA."""
    return lora_out(await loras.get(slug))


@router.post("/loras/{slug}/disable", response_model=LoraOut)
async def disable_lora(slug: Slug, loras: LorasDep) -> LoraOut:
    """Switch a LoRA off: prompts stop applying it, and its tags are removed with a warning."""
    return lora_out(await loras.disable(slug))
