"""The internal API end to end through the ASGI app: every endpoint, its auth, its errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, PLATFORM
from tests.fakes.clock import FakeClock

D = "/internal/v1/data"


async def _user(client: httpx.AsyncClient, pid: str = "100", platform: str = "telegram") -> str:
    r = await client.post(
        f"{D}/users/find-or-create",
        headers=PLATFORM,
        json={"platform": platform, "platformId": pid, "platformContext": {"username": "ann"}},
    )
    assert r.status_code in (200, 201), r.text
    return str(r.json()["masterAccountId"])


async def _credit(client: httpx.AsyncClient, aid: str, amount: str, **extra: Any) -> httpx.Response:
    return await client.post(
        f"{D}/users/{aid}/economy/credit",
        headers=ADMIN,
        json={"amountUsd": amount, "description": "top-up", **extra},
    )


# --- auth ------------------------------------------------------------------------------------------


async def test_a_request_without_a_client_key_gets_401_missing_auth_header(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{D}/users/3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "MISSING_AUTH_HEADER"
    assert r.json()["error"]["requestId"]


async def test_an_unknown_client_key_gets_403_invalid_api_key(client: httpx.AsyncClient) -> None:
    r = await client.get(
        f"{D}/users/3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59",
        headers={"X-Internal-Client-Key": "nope-nope-nope-nope"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INVALID_API_KEY")


@pytest.mark.parametrize("path", ["economy/credit", "economy/debit"])
async def test_a_platform_client_may_not_move_money(client: httpx.AsyncClient, path: str) -> None:
    aid = await _user(client)
    r = await client.post(f"{D}/users/{aid}/{path}", headers=PLATFORM, json={"amountUsd": "1"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")
    r = await client.put(f"{D}/users/{aid}/economy/exp", headers=PLATFORM, json={"expChange": 5})
    assert r.status_code == 403
    assert (await client.get(f"{D}/users/{aid}/economy", headers=PLATFORM)).json()["usdCredit"] == "0.000000000"


async def test_an_unknown_path_is_404_not_found(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{D}/nothing/here", headers=ADMIN)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "NOT_FOUND")


# --- users -----------------------------------------------------------------------------------------


async def test_find_or_create_answers_201_then_200_with_the_same_account(client: httpx.AsyncClient) -> None:
    body = {"platform": "telegram", "platformId": 555}
    first = await client.post(f"{D}/users/find-or-create", headers=PLATFORM, json=body)
    second = await client.post(f"{D}/users/find-or-create", headers=PLATFORM, json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["isNewUser"] is True and second.json()["isNewUser"] is False
    assert first.json()["masterAccountId"] == second.json()["masterAccountId"]
    assert first.json()["user"]["platformIdentities"] == {"telegram": "555"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "myspace", "platformId": "1"}, None),
        ({"platformId": "1"}, "platform"),
        ({"platform": "telegram", "platformId": "1", "extra": 1}, "extra"),
        ({"platform": "telegram", "platformId": "a b"}, None),
        ({"platform": "telegram", "platformId": 1.5}, "platformId"),
    ],
)
async def test_bad_find_or_create_bodies_get_400_invalid_input(
    client: httpx.AsyncClient, body: dict[str, Any], field: str | None
) -> None:
    r = await client.post(f"{D}/users/find-or-create", headers=PLATFORM, json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_INPUT")
    if field:
        assert field in [d["field"].split(".")[0] for d in r.json()["error"]["details"]]


async def test_get_user_and_by_platform_agree(client: httpx.AsyncClient) -> None:
    aid = await _user(client, "77")
    by_id = (await client.get(f"{D}/users/{aid}", headers=PLATFORM)).json()
    by_platform = (await client.get(f"{D}/users/by-platform/telegram/77", headers=PLATFORM)).json()
    assert by_id == by_platform
    assert by_id["masterAccountId"] == aid and by_id["username"] == "ann"
    r = await client.get(f"{D}/users/by-platform/telegram/78", headers=PLATFORM)
    assert r.status_code == 404


async def test_malformed_and_unknown_user_ids(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{D}/users/not-a-uuid", headers=PLATFORM)).status_code == 400
    assert (await client.get(f"{D}/users/3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59", headers=PLATFORM)).status_code == 404


async def test_put_user_changes_the_profile_but_refuses_read_only_fields(client: httpx.AsyncClient) -> None:
    aid = await _user(client)
    r = await client.put(f"{D}/users/{aid}", headers=PLATFORM, json={"displayName": "Ann", "profile": {"lang": "en"}})
    assert r.status_code == 200 and r.json()["displayName"] == "Ann" and r.json()["profile"] == {"lang": "en"}
    read_only: list[dict[str, object]] = [{"masterAccountId": "x"}, {"usdCredit": "100"}, {"platformIdentities": {}}]
    for body in read_only:
        r = await client.put(f"{D}/users/{aid}", headers=PLATFORM, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "FORBIDDEN_FIELD_UPDATE")
    r = await client.put(f"{D}/users/{aid}", headers=PLATFORM, json={"status": "deleted"})
    assert r.status_code == 400
    assert (await client.get(f"{D}/users/{aid}", headers=PLATFORM)).json()["status"] == "active"


# --- sessions and events ------------------------------------------------------------------------------


async def test_sessions_open_once_touch_end_and_list(client: httpx.AsyncClient, clock: FakeClock) -> None:
    aid = await _user(client)
    first = await client.post(f"{D}/sessions", headers=PLATFORM, json={"masterAccountId": aid, "platform": "telegram"})
    again = await client.post(f"{D}/sessions", headers=PLATFORM, json={"masterAccountId": aid, "platform": "telegram"})
    assert (first.status_code, again.status_code) == (201, 200)
    sid = first.json()["sessionId"]
    assert again.json()["sessionId"] == sid
    active = await client.get(f"{D}/users/{aid}/sessions/active", params={"platform": "telegram"}, headers=PLATFORM)
    assert active.json()["sessionId"] == sid
    assert (await client.get(f"{D}/users/{aid}/sessions/active", headers=PLATFORM)).status_code == 400
    clock.advance(minutes=1)
    touched = await client.put(f"{D}/sessions/{sid}/activity", headers=PLATFORM)
    assert touched.json()["lastActivityAt"] != first.json()["lastActivityAt"]
    ended = await client.put(f"{D}/sessions/{sid}/end", headers=PLATFORM, json={"endReason": "user_ended"})
    assert ended.json()["isActive"] is False and ended.json()["endReason"] == "user_ended"
    assert (await client.put(f"{D}/sessions/{sid}/activity", headers=PLATFORM)).status_code == 400
    listed = await client.get(f"{D}/users/{aid}/sessions", headers=PLATFORM)
    assert [s["sessionId"] for s in listed.json()["items"]] == [sid]
    log = await client.get(f"{D}/sessions/{sid}/events", headers=PLATFORM)
    assert [e["eventType"] for e in log.json()["items"]] == ["session_ended", "session_started"]


async def test_events_are_appended_read_and_listed(client: httpx.AsyncClient) -> None:
    aid = await _user(client)
    r = await client.post(
        f"{D}/events",
        headers=PLATFORM,
        json={
            "masterAccountId": aid,
            "eventType": "user_command_triggered",
            "eventData": {"command": "/help"},
            "sourcePlatform": "telegram",
        },
    )
    assert r.status_code == 201
    eid = r.json()["eventId"]
    assert (await client.get(f"{D}/events/{eid}", headers=PLATFORM)).json()["eventData"] == {"command": "/help"}
    listed = (await client.get(f"{D}/users/{aid}/events", headers=PLATFORM)).json()["items"]
    assert eid in [e["eventId"] for e in listed]
    bad = await client.post(f"{D}/events", headers=PLATFORM, json={"masterAccountId": aid, "eventType": "Bad Type"})
    assert bad.status_code == 400
    ghost = await client.post(
        f"{D}/events",
        headers=PLATFORM,
        json={"masterAccountId": "3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59", "eventType": "x"},
    )
    assert ghost.status_code == 400


# --- economy ---------------------------------------------------------------------------------------


async def test_credit_debit_and_transactions(client: httpx.AsyncClient, clock: FakeClock) -> None:
    aid = await _user(client)
    r = await _credit(client, aid, "10.50", externalTransactionId="stripe-1", transactionType="purchase")
    clock.advance(seconds=1)
    assert r.status_code == 201
    assert r.json()["economy"]["usdCredit"] == "10.500000000"
    again = await _credit(client, aid, "10.50", externalTransactionId="stripe-1")
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["transaction"]["transactionId"] == r.json()["transaction"]["transactionId"]
    debit = await client.post(f"{D}/users/{aid}/economy/debit", headers=ADMIN, json={"amountUsd": "0.5"})
    assert debit.status_code == 201 and debit.json()["economy"]["usdCredit"] == "10.000000000"
    too_much = await client.post(f"{D}/users/{aid}/economy/debit", headers=ADMIN, json={"amountUsd": "11"})
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "INSUFFICIENT_FUNDS"
    assert too_much.json()["error"]["details"] == {
        "currentBalance": "10.000000000",
        "debitAmount": "11.000000000",
    }
    economy = (await client.get(f"{D}/users/{aid}/economy", headers=PLATFORM)).json()
    assert (economy["usdCredit"], economy["points"]) == ("10.000000000", 29673)
    txs = (await client.get(f"{D}/users/{aid}/transactions", headers=PLATFORM)).json()["items"]
    assert [t["type"] for t in txs] == ["debit", "credit"]
    assert txs[1]["externalTransactionId"] == "stripe-1"
    one = await client.get(f"{D}/transactions/{txs[0]['transactionId']}", headers=PLATFORM)
    assert one.json()["balanceBeforeUsd"] == "10.500000000" and one.json()["balanceAfterUsd"] == "10.000000000"


@pytest.mark.parametrize("amount", ["-1", "1e400", "NaN", "0", "abc", "0.0000000001", 1.5, None, True, "Infinity"])
async def test_bad_amounts_get_400_and_change_nothing(client: httpx.AsyncClient, amount: object) -> None:
    aid = await _user(client)
    r = await _credit(client, aid, amount)  # type: ignore[arg-type]
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_INPUT")
    assert (await client.get(f"{D}/users/{aid}/economy", headers=ADMIN)).json()["usdCredit"] == "0.000000000"
    assert (await client.get(f"{D}/users/{aid}/transactions", headers=ADMIN)).json()["items"] == []


async def test_exp_changes_through_the_api(client: httpx.AsyncClient) -> None:
    aid = await _user(client)
    r = await client.put(f"{D}/users/{aid}/economy/exp", headers=ADMIN, json={"expChange": 30})
    assert r.json()["exp"] == 30
    assert (await client.put(f"{D}/users/{aid}/economy/exp", headers=ADMIN, json={"expChange": -31})).status_code == 400
    assert (await client.put(f"{D}/users/{aid}/economy/exp", headers=ADMIN, json={"expChange": "3"})).status_code == 400


async def test_status_report_shows_points_level_and_no_live_tasks(client: httpx.AsyncClient) -> None:
    aid = await _user(client)
    await _credit(client, aid, "1")
    await client.put(f"{D}/users/{aid}/economy/exp", headers=ADMIN, json={"expChange": 10})
    r = (await client.get(f"{D}/users/{aid}/status-report", headers=PLATFORM)).json()
    assert (r["points"], r["usdCredit"], r["exp"], r["level"], r["liveTasks"]) == (
        2967,
        "1.000000000",
        10,
        2,
        [],
    )
    assert r["levelProgress"] == pytest.approx(2 / 19, abs=1e-4)


async def test_pagination_walks_every_item_once(client: httpx.AsyncClient, clock: FakeClock) -> None:
    aid = await _user(client)
    for i in range(7):
        await _credit(client, aid, str(i + 1))
        clock.advance(seconds=1)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{D}/users/{aid}/transactions", headers=ADMIN, params=params)).json()
        seen += [t["amountUsd"] for t in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == [f"{n}.000000000" for n in range(7, 0, -1)]
    for bad in ({"limit": 0}, {"limit": 101}, {"cursor": "!!!"}):
        assert (await client.get(f"{D}/users/{aid}/transactions", headers=ADMIN, params=bad)).status_code == 400


async def test_service_status(client: httpx.AsyncClient) -> None:
    r = (await client.get(f"{D}/internal/status", headers=PLATFORM)).json()
    assert r["status"] == "ok" and r["version"] and "startTime" in r and r["uptime"] >= 0


async def test_a_ten_megabyte_body_gets_413_and_changes_nothing(client: httpx.AsyncClient) -> None:
    body = b'{"platform": "telegram", "platformId": "1", "platformContext": {"x": "' + b"a" * 10_000_000 + b'"}}'
    r = await client.post(
        f"{D}/users/find-or-create", headers={**PLATFORM, "content-type": "application/json"}, content=body
    )
    assert (r.status_code, r.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert (await client.get(f"{D}/users/by-platform/telegram/1", headers=PLATFORM)).status_code == 404


async def test_a_multipart_body_gets_the_small_limit_outside_the_upload_routes(client: httpx.AsyncClient) -> None:
    # 2 MB: over NOEMA_MAX_BODY_BYTES (1 MB) but far under what the upload routes take (a 20 MiB file and more).
    files = {"file": ("big.bin", b"a" * 2_000_000, "application/octet-stream")}
    for url in (f"{D}/users/find-or-create", "/signin", "/api/webhook/telegram"):
        r = await client.post(url, headers=PLATFORM, files=files, data={"platform": "telegram"})
        assert (r.status_code, r.headers["content-type"]) == (413, "application/json"), (url, r.text[:200])
    # The upload routes still take it (and then judge the form itself).
    r = await client.post("/app/run", files=files, data={"tool": "txt2img"})
    assert r.status_code != 413


async def test_a_body_that_is_not_json_gets_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        f"{D}/users/find-or-create",
        headers={**PLATFORM, "content-type": "application/json"},
        content=b"{not json",
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_INPUT")
