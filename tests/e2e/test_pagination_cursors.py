"""Cursors come from clients: any cursor that is not one we handed out is a 400, never a 500."""

from __future__ import annotations

import base64

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN, funded_key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: Cursors an attacker tried, and their relatives: a naive time, a non-UUID id, NUL bytes, odd years.
CRAFTED = [
    _b64(b"2020-01-01T00:00:00|zzz"),
    _b64(b"2020-01-01T00:00:00|3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59"),
    _b64(b"2020-01-01T00:00:00+00:00|zzz"),
    _b64(b"2020-01-01T00:00:00+00:00|\x00"),
    _b64(b"0001-01-01T00:00:00+23:59|3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59"),
    _b64(b"9999-12-31T23:59:59+00:00|" + b"a" * 150),
    _b64(b"\xff\xfe|\x80"),
    _b64(b"no separator"),
    "2020-01-01T00:00:00|zzz",
    "%%%",
]


@pytest.mark.parametrize("cursor", CRAFTED)
async def test_a_crafted_cursor_gets_400_on_every_listing(app: FastAPI, client: httpx.AsyncClient, cursor: str) -> None:
    aid, auth = await funded_key(app, "0")
    for url, headers in [
        ("/api/v1/generations", auth),
        ("/internal/v1/data/generations", ADMIN),
        (f"/internal/v1/data/users/{aid}/transactions", ADMIN),
        (f"/internal/v1/data/users/{aid}/sessions", ADMIN),
    ]:
        r = await client.get(url, headers=headers, params={"cursor": cursor})
        assert r.status_code == 400, (url, cursor, r.status_code, r.text[:300])
        assert r.json()["error"]["code"] == "INVALID_INPUT"
    # A LoRA cursor names a slug, so most strings are valid ones; a broken one is still never a 500.
    loras = await client.get("/internal/v1/data/loras", headers=ADMIN, params={"cursor": cursor})
    assert loras.status_code in (200, 400), (cursor, loras.status_code, loras.text[:300])


_chars = st.characters(exclude_categories=["Cs"])
_stamps = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.text(_chars, max_size=40),
)
_ids = st.one_of(st.uuids().map(str), st.text(_chars, max_size=60), st.binary(max_size=40).map(lambda b: b.hex()))
_cursors = st.one_of(
    st.tuples(_stamps, _ids).map(lambda p: _b64(f"{p[0]}|{p[1]}".encode("utf-8", "surrogatepass"))),
    st.binary(max_size=120).map(_b64),
    st.text(_chars, max_size=120),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cursor=_cursors)
async def test_no_cursor_whatever_its_bytes_gets_a_server_error(
    app: FastAPI, client: httpx.AsyncClient, cursor: str
) -> None:
    for url in ("/internal/v1/data/generations", "/internal/v1/data/loras"):
        r = await client.get(url, headers=ADMIN, params={"cursor": cursor})
        assert r.status_code in (200, 400), (url, cursor, r.status_code, r.text[:300])
