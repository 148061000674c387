"""The LoRA library through the internal API: only the admin client manages it, and bad bodies get 400."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, PLATFORM
from tests.fakes.clock import FakeClock

D = "/internal/v1/data"
CAT = {"slug": "cat", "family": "SDXL", "triggers": ["cat", "kitty cat"], "defaultWeight": 0.7}


async def _account(client: httpx.AsyncClient, pid: str) -> str:
    r = await client.post(
        f"{D}/users/find-or-create", headers=PLATFORM, json={"platform": "telegram", "platformId": pid}
    )
    return str(r.json()["masterAccountId"])


async def test_the_admin_client_adds_updates_reads_lists_and_disables_loras(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    owner = await _account(client, "1")
    added = await client.post(f"{D}/loras", headers=ADMIN, json=CAT)
    assert added.status_code == 201, added.text
    assert added.json()["outcome"] == "added"
    assert added.json()["lora"] | {"createdAt": None, "updatedAt": None} == {
        "slug": "cat",
        "displayName": "cat",
        "triggers": ["cat", "kitty cat"],
        "cognates": [],
        "defaultWeight": 0.7,
        "family": "SDXL",
        "ownerId": None,
        "visibility": "public",
        "allowedAccounts": [],
        "enabled": True,
        "usageCount": 0,
        "createdAt": None,
        "updatedAt": None,
    }
    same = await client.post(f"{D}/loras", headers=ADMIN, json=CAT)
    assert (same.status_code, same.json()["outcome"]) == (200, "unchanged")
    clock.advance(minutes=1)
    private = {**CAT, "ownerId": owner, "visibility": "private", "cognates": [{"word": "kitty", "replaceWith": "cat"}]}
    updated = await client.post(f"{D}/loras", headers=ADMIN, json=private)
    assert (updated.status_code, updated.json()["outcome"]) == (200, "updated")
    assert updated.json()["lora"]["cognates"] == [{"word": "kitty", "replaceWith": "cat"}]
    assert updated.json()["lora"]["updatedAt"] != updated.json()["lora"]["createdAt"]
    assert (await client.get(f"{D}/loras/CAT", headers=ADMIN)).json()["ownerId"] == owner
    await client.post(f"{D}/loras", headers=ADMIN, json={"slug": "dog", "family": "sd1.5"})
    listed = (await client.get(f"{D}/loras", headers=ADMIN, params={"limit": 1})).json()
    assert [lora["slug"] for lora in listed["items"]] == ["cat"] and listed["nextCursor"]
    rest = (await client.get(f"{D}/loras", headers=ADMIN, params={"cursor": listed["nextCursor"]})).json()
    assert [lora["slug"] for lora in rest["items"]] == ["dog"] and rest["nextCursor"] is None
    off = await client.post(f"{D}/loras/dog/disable", headers=ADMIN)
    assert off.status_code == 200 and off.json()["enabled"] is False
    only_off = (await client.get(f"{D}/loras", headers=ADMIN, params={"enabled": "false"})).json()
    assert [lora["slug"] for lora in only_off["items"]] == ["dog"]


async def test_an_import_body_adds_then_changes_nothing_when_sent_again(client: httpx.AsyncClient) -> None:
    body = {"loras": [CAT, {"slug": "dog", "family": "PONY", "trigger_words": "dog, puppy", "createdAt": "x"}]}
    first = await client.post(f"{D}/loras/import", headers=ADMIN, json=body)
    assert first.status_code == 200, first.text
    assert first.json() == {"added": 2, "updated": 0, "unchanged": 0, "total": 2}
    again = await client.post(f"{D}/loras/import", headers=ADMIN, json=body["loras"])
    assert again.json() == {"added": 0, "updated": 0, "unchanged": 2, "total": 2}
    assert (await client.get(f"{D}/loras/dog", headers=ADMIN)).json()["triggers"] == ["dog", "puppy"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/loras", None),
        ("GET", "/loras/cat", None),
        ("POST", "/loras", CAT),
        ("POST", "/loras/import", [CAT]),
        ("POST", "/loras/cat/disable", None),
    ],
)
async def test_a_platform_client_gets_403_on_every_lora_endpoint(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    assert (await client.post(f"{D}/loras", headers=ADMIN, json=CAT)).status_code == 201
    r = await client.request(method, f"{D}{path}", headers=PLATFORM, json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")
    assert "LoRA library" in r.json()["error"]["message"]
    stored = (await client.get(f"{D}/loras/cat", headers=ADMIN)).json()
    assert stored["enabled"] is True and stored["triggers"] == CAT["triggers"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"slug": "cat"}, "family", "Field required"),
        ({**CAT, "colour": "red"}, "colour", "unknown field"),
        ({**CAT, "defaultWeight": "0.7"}, "defaultWeight", "number"),
        ({**CAT, "defaultWeight": True}, "defaultWeight", "number"),
        ({**CAT, "family": "SD9"}, "family", "must be one of: SD1.5, SDXL"),
        ({**CAT, "defaultWeight": 999}, "defaultWeight", "between -10 and 10"),
        ({**CAT, "slug": "no spaces"}, "slug", "letters, digits"),
        ({**CAT, "triggers": ["<lora:x>"]}, "triggers", "no '<' or '>'"),
        ({**CAT, "visibility": "private"}, "ownerId", "is required for a private LoRA"),
        ({**CAT, "visibility": "secret"}, "visibility", "public, private, allowed"),
        ({**CAT, "ownerId": "3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59"}, "ownerId", "is not an account id"),
    ],
)
async def test_bad_lora_bodies_get_400_invalid_input_with_details(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, message: str
) -> None:
    r = await client.post(f"{D}/loras", headers=ADMIN, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "INVALID_INPUT" and "Traceback" not in error["message"]
    details = error["details"] if isinstance(error["details"], list) else [error["details"]]
    assert field in [d["field"] for d in details]
    assert message in " ".join([error["message"], *(d.get("message", "") for d in details)])
    assert (await client.get(f"{D}/loras", headers=ADMIN)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"entries": []}, None),
        ("cat", None),
        ([CAT, {"slug": "dog"}], {"entry": 1, "field": "family"}),
        ([CAT, {**CAT, "slug": "CAT"}], {"entry": 1, "field": "slug"}),
        ([CAT, 5], {"entry": 1, "field": "entry"}),
    ],
)
async def test_a_bad_import_body_gets_400_naming_the_entry_and_imports_nothing(
    client: httpx.AsyncClient, body: Any, details: dict[str, Any] | None
) -> None:
    r = await client.post(f"{D}/loras/import", headers=ADMIN, json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_INPUT")
    if details is not None:
        assert r.json()["error"]["details"] == details
    assert (await client.get(f"{D}/loras", headers=ADMIN)).json()["items"] == []


async def test_an_unknown_slug_is_404_not_found(client: httpx.AsyncClient) -> None:
    for r in (
        await client.get(f"{D}/loras/nope", headers=ADMIN),
        await client.post(f"{D}/loras/nope/disable", headers=ADMIN),
    ):
        assert (r.status_code, r.json()["error"]["code"]) == (404, "NOT_FOUND")
        assert "nope" in r.json()["error"]["message"]
