"""The catalog service: built from the backend, persisted, served from the snapshot when the backend is down."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import stamina

from noema.adapters.backends.comfydeploy import ComfyDeployBackend
from noema.bootstrap import Container, build_container
from noema.domain.errors import BackendUnavailable, ToolNotFound
from noema.domain.pricing import parse_rates
from noema.domain.tools import Tool
from noema.services.catalog import Catalog, tool_from_json, tool_to_json
from tests.conftest import make_settings
from tests.fakes.clock import FakeClock


@pytest.fixture(autouse=True)
def _no_retry_sleeps() -> None:
    stamina.set_testing(True, attempts=1)


def _dead_backend() -> ComfyDeployBackend:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    return ComfyDeployBackend(client=client, base_url="http://down.invalid/api", api_key="k", retry_attempts=1)


async def _container(db_url: str, tmp_path: Path, clock: FakeClock, **overrides: object) -> Container:
    c = build_container(make_settings(db_url, sandbox_data_dir=str(tmp_path), **overrides), clock=clock)
    await c.start()
    return c


async def test_tools_come_from_the_backend_and_are_saved(db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    c = await _container(db_url, tmp_path, clock)
    try:
        tools = await c.catalog.tools()
        assert {"txt2img", "img2img", "animate", "upscale", "caption", "flux_pro"} <= {t.command for t in tools}
        assert (await c.catalog.find("/TXT2IMG")).gpu == "A10G"
        with pytest.raises(ToolNotFound):
            await c.catalog.find("nope")
        # A second Noema whose backend is down starts from the saved catalog.
        offline = Catalog(backend=_dead_backend(), uow_factory=c.uow, clock=clock, rates=parse_rates({}), overrides={})
        assert [t.command for t in await offline.tools()] == [t.command for t in tools]
        assert (await offline.refresh())[0].command == tools[0].command  # refresh fails, keeps what it had
    finally:
        await c.close()


async def test_with_the_backend_down_and_nothing_saved_the_error_says_so(db_url: str, clock: FakeClock) -> None:
    c = build_container(make_settings(db_url), clock=clock)
    try:
        offline = Catalog(backend=_dead_backend(), uow_factory=c.uow, clock=clock, rates=parse_rates({}), overrides={})
        with pytest.raises(BackendUnavailable, match="no tool list was saved"):
            await offline.tools()
    finally:
        await c.close()


async def test_operator_prices_and_overrides_change_the_catalog(db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    overrides = json.dumps({"txt2img": {"command": "imagine", "priority": 5}, "upscale": {"visibility": "hidden"}})
    c = await _container(db_url, tmp_path, clock, gpu_rates="H200=0.003", tool_overrides=overrides)
    try:
        tools = {t.command: t for t in await c.catalog.tools()}
        assert "imagine" in tools and "txt2img" not in tools
        assert tools["imagine"].priority == 5 and next(iter(tools)) == "imagine"
        assert tools["flux_pro"].enabled and tools["flux_pro"].rate_nanos_per_second == 3_000_000
        assert tools["upscale"].visibility.value == "hidden"
    finally:
        await c.close()


async def test_a_change_bumps_the_version_and_tells_listeners(db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    c = await _container(db_url, tmp_path, clock)
    try:
        seen: list[int] = []
        c.catalog.on_change(lambda tools: seen.append(len(tools)))
        await c.catalog.tools()
        version = c.catalog.version
        await c.catalog.refresh()  # same tools: no change
        assert (c.catalog.version, seen) == (version, [6])
    finally:
        await c.close()


def test_a_tool_survives_the_json_round_trip() -> None:
    from noema.domain.runs import OutputKind
    from noema.domain.tools import InputType, PrimaryInput, ToolInput

    tool = Tool(
        id="d1",
        command="x",
        display_name="X",
        description="",
        primary_input=PrimaryInput.IMAGE_TEXT,
        inputs=(
            ToolInput(name="img", type=InputType.IMAGE, required=True),
            ToolInput(name="mode", type=InputType.ENUM, required=False, default="a", options=("a", "b")),
        ),
        output_kind=OutputKind.ANIMATION,
        deployment_id="d1",
        machine_id="m",
        gpu="L4",
        rate_nanos_per_second=320_000,
    )
    assert tool_from_json(json.loads(json.dumps(tool_to_json(tool)))) == tool
