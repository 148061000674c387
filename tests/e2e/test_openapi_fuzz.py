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
def app_for_fuzz(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app on a migrated SQLite database."""
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    url = f"sqlite+aiosqlite:///{path}"
    run_sync(_migrate(url))
    return create_app(build_container(make_settings(url, migrate_on_start=False)))


@pytest.fixture(scope="module")
def public_schema(app_for_fuzz: Any) -> Any:
    """The public API's OpenAPI schema."""
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app_for_fuzz)


@pytest.fixture(scope="module")
def internal_schema(app_for_fuzz: Any) -> Any:
    """The internal API's OpenAPI schema (served to internal clients only)."""
    return schemathesis.openapi.from_asgi("/internal/v1/openapi.json", app_for_fuzz, headers=HEADERS)


HEADERS = {"X-Internal-Client-Key": ADMIN_KEY, "Authorization": "Bearer nk_not_a_real_key"}
public = schemathesis.pytest.from_fixture("public_schema")
internal = schemathesis.pytest.from_fixture("internal_schema")


@public.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_public_request_gets_a_server_error(case: Any) -> None:
    response = case.call_and_validate(headers=HEADERS, checks=[not_a_server_error])
    assert response.status_code < 500


@internal.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_internal_request_gets_a_server_error(case: Any) -> None:
    response = case.call_and_validate(headers=HEADERS, checks=[not_a_server_error])
    assert response.status_code < 500
