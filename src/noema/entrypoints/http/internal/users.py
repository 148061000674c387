"""Internal API: users and their platform identities."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import Field

from noema.domain.accounts import AccountStatus, parse_platform, parse_platform_id
from noema.domain.errors import ForbiddenFieldUpdate, InvalidInput
from noema.domain.ids import parse_id
from noema.domain.linking import CodePurpose
from noema.entrypoints.http.deps import ClientDep, ClockDep, SecretsDep, SettingsDep, UowDep, UowFactoryDep
from noema.entrypoints.http.schemas import (
    READ_ONLY_USER_FIELDS,
    ApiModel,
    FindOrCreateIn,
    FindOrCreateOut,
    UserOut,
    UserUpdateIn,
    user_out,
)
from noema.services import accounts, linking

router = APIRouter(tags=["users"])
AccountId = Annotated[str, Path(description="masterAccountId (UUID)")]


@router.post(
    "/users/find-or-create",
    response_model=FindOrCreateOut,
    status_code=200,
    responses={201: {"model": FindOrCreateOut}},
)
async def find_or_create(
    body: FindOrCreateIn, uow_factory: UowFactoryDep, clock: ClockDep, response: Response
) -> FindOrCreateOut:
    """The account of a platform identity; 201 when it was created now."""
    platform = parse_platform(body.platform)
    found = await accounts.find_or_create(
        uow_factory,
        clock,
        platform=platform,
        platform_id=parse_platform_id(str(body.platform_id)),
        context=body.platform_context,
    )
    if found.is_new:
        response.status_code = 201
    return FindOrCreateOut(
        master_account_id=found.account.id,
        user=user_out(found.account, found.identities),
        is_new_user=found.is_new,
    )


@router.get("/users/by-platform/{platform}/{platform_id}", response_model=UserOut)
async def by_platform(platform: str, platform_id: str, uow: UowDep) -> UserOut:
    """The user holding a platform identity."""
    found = await accounts.by_platform(uow, parse_platform(platform), parse_platform_id(platform_id))
    return user_out(found.account, found.identities)


@router.get("/users/{account_id}", response_model=UserOut)
async def get_user(account_id: AccountId, uow: UowDep) -> UserOut:
    """One user."""
    found = await accounts.get(uow, parse_id(account_id, what="masterAccountId"))
    return user_out(found.account, found.identities)


@router.put("/users/{account_id}", response_model=UserOut)
async def update_user(account_id: AccountId, body: UserUpdateIn, uow: UowDep, clock: ClockDep) -> UserOut:
    """Change a user's profile or status; identity, id and money fields are read-only."""
    forbidden = [name for name in READ_ONLY_USER_FIELDS if name in body.model_fields_set]
    if forbidden:
        fields = [UserUpdateIn.model_fields[name].alias or name for name in forbidden]
        raise ForbiddenFieldUpdate(f"These fields are read-only: {', '.join(fields)}.", details={"fields": fields})
    status = None
    if body.status is not None:
        try:
            status = AccountStatus(body.status)
        except ValueError:
            raise InvalidInput(f"status must be one of: {', '.join(s.value for s in AccountStatus)}.") from None
    changes = accounts.AccountChanges(
        display_name=body.display_name,
        username=body.username,
        status=status,
        wallet_address=body.wallet_address,
        profile=body.profile,
    )
    found = await accounts.update(uow, clock, parse_id(account_id, what="masterAccountId"), changes)
    return user_out(found.account, found.identities)


class LinkCodeIn(ApiModel):
    purpose: CodePurpose = CodePurpose.LINK
    platform: Annotated[str, Field(max_length=32)] | None = None


class LinkCodeOut(ApiModel):
    code: str
    purpose: str
    expires_at: datetime
    sign_in_url: str | None = None


@router.post("/users/{account_id}/link-codes", response_model=LinkCodeOut, status_code=201)
async def create_link_code(
    account_id: AccountId,
    body: LinkCodeIn,
    client: ClientDep,
    uow: UowDep,
    clock: ClockDep,
    secrets: SecretsDep,
    settings: SettingsDep,
) -> LinkCodeOut:
    """A one-time code (10 minutes): to type into another platform, or a web sign-in link.

    The admin client may ask for any account; a platform client (named after its platform) only for
    link codes of its own platform's users, and never for sign-in links (403).
    """
    platform = parse_platform(body.platform).value if body.platform else None
    issued = await linking.issue_for_client(
        uow,
        clock,
        parse_id(account_id, what="masterAccountId"),
        body.purpose,
        secrets=secrets,
        client=client.name,
        platform=platform,
    )
    url = f"{settings.base_url}/signin/link/{issued.code}" if body.purpose is CodePurpose.SIGN_IN else None
    return LinkCodeOut(code=issued.code, purpose=body.purpose.value, expires_at=issued.expires_at, sign_in_url=url)
