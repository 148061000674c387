"""Schemathesis drives the internal and public APIs from their own OpenAPI document: never a 5xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from noema.adapters.db.engine import create_engine
from noema.adapters.db.migrate import upgrade_to_head
from noema.bootstrap import build_container
from noema.entrypoints.http.app import create_app
from tests.conftest import ADMIN_KEY, make_settings, run_sync


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    await upgrade_to_head(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app's OpenAPI schema, bound to an app on a migrated SQLite database."""
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    url = f"sqlite+aiosqlite:///{path}"
    run_sync(_migrate(url))
    app = create_app(build_container(make_settings(url, migrate_on_start=False)))
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: Any) -> None:
    headers = {"X-Internal-Client-Key": ADMIN_KEY, "Authorization": "Bearer nk_not_a_real_key"}
    response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
    assert response.status_code < 500
