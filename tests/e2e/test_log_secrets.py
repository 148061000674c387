"""No secret reaches a log line.

``noema serve`` runs as a real process; its stderr is read back after requests that carry keys,
cookies and tokens, including requests that end in a 500 with a traceback.
"""

from __future__ import annotations

import base64
import secrets
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.fakes.processes import free_port, funded_api_account, noema_env, start_serve

ADMIN = {"X-Internal-Client-Key": ADMIN_KEY}


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_keys_cookies_and_tokens_never_reach_the_server_log(tmp_path: Path, log_format: str) -> None:
    port = free_port()
    db = tmp_path / "noema.db"
    env = noema_env(
        {
            "NOEMA_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "NOEMA_PORT": str(port),
            "NOEMA_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NOEMA_SANDBOX_DATA_DIR": str(tmp_path / "sandbox"),
            "NOEMA_INTERNAL_API_KEYS": f"admin:{ADMIN_KEY}",
            "NOEMA_WORKERS_ENABLED": "false",
            "NOEMA_LOG_FORMAT": log_format,
        }
    )
    server = await start_serve(env, cwd=tmp_path, name="serve", port=port)
    query_token = "qt" + secrets.token_urlsafe(24)
    link_token = "lt" + secrets.token_urlsafe(24)
    session_cookie = "sc" + secrets.token_urlsafe(24)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _, auth = await funded_api_account(client, admin=ADMIN, env=env, cwd=tmp_path, platform_id="logs")
            key = auth["Authorization"].removeprefix("Bearer ")
            naive = base64.urlsafe_b64encode(b"2020-01-01T00:00:00|zzz").decode().rstrip("=")
            assert (await client.get("/api/v1/generations", headers=auth, params={"cursor": naive})).status_code == 400
            await client.get(f"/signin/link/{link_token}", params={"token": query_token})
            await client.post(
                "/api/webhook/comfydeploy",
                params={"generation_id": "3f2b8c1e-5d4a-4c3b-9a8f-0e1d2c3b4a59", "token": query_token},
                json={},
            )
            # Now break the database under the running server: every lookup below ends in a 500 and a
            # logged traceback, with the key, the client key and the cookie in the request being handled.
            with sqlite3.connect(db) as conn:
                for table in ("api_keys", "generations", "web_sessions"):
                    conn.execute(f"DROP TABLE {table}")
            # (uvicorn closes a connection whose request raised, so each goes on a connection of its own.)
            close = {"Connection": "close"}
            broken = [
                await client.get("/api/v1/generations", headers=auth | close, params={"token": query_token}),
                await client.get("/internal/v1/data/generations", headers=ADMIN | close, params={"token": query_token}),
                await client.get("/app", headers=close | {"Cookie": f"noema_session={session_cookie}"}),
            ]
            assert [r.status_code for r in broken] == [500, 500, 500]
            assert all(key not in r.text and "Traceback" not in r.text for r in broken)
            assert all(r.headers["x-content-type-options"] == "nosniff" for r in broken)
            assert broken[0].json()["error"]["code"] == "INTERNAL_ERROR"
    finally:
        server.stop()
    log = server.stderr_path.read_text(errors="replace") + server.stdout_path.read_text(errors="replace")
    assert "Traceback" in log and "/signin/link/" in log  # the failures and the requests were logged ...
    for secret in (key, key[3:20], ADMIN_KEY, query_token, link_token, session_cookie):
        assert secret not in log, f"{secret[:6]}… is in the log:\n{log[-3000:]}"
    # ... without the locals of every frame (the request scope with its headers among them).
    assert "scope = " not in log and "'headers':" not in log
    assert log.count("\n") < 1000, f"{log.count(chr(10))} log lines for a handful of requests"
