"""The ComfyDeploy client against a stateful fake of the V2 API, served through httpx.MockTransport.

stamina's test mode removes the real backoff sleeps; what the client *asked* to wait is read from
its log records.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from noema.adapters.backends.comfydeploy import ComfyDeployBackend
from noema.domain.errors import (
    BackendOutcomeUnknown,
    BackendProtocolError,
    BackendRejected,
    BackendUnavailable,
    ExternalServiceError,
)
from noema.domain.runs import OutputKind, RunStatus, UploadedFile

DATA = Path(__file__).parents[1] / "data" / "comfydeploy"
BASE_URL = "https://api.comfydeploy.test/api"
API_KEY = "cd-secret-eyJhbGciOiJIUzI1NiJ9.key"
FINISHED_RUN = "9b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
DEPLOYMENT = "15e79589-12c9-453c-a41a-348fdd7de957"
WORKFLOW = "7d2e9a10-5c4b-4e3f-8a1d-2b3c4d5e6f70"

Fault = httpx.Response | type[httpx.TransportError]


CALLS: dict[str, Callable[[ComfyDeployBackend], Awaitable[object]]] = {
    "queue": lambda b: b.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None),
    "get": lambda b: b.get_run(FINISHED_RUN),
    "deployments": lambda b: b.list_deployments(),
    "upload": lambda b: b.upload_file(filename="a.png", content=b"x", content_type="image/png"),
}


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text())


class FakeComfyDeploy:
    """Serves the recorded payloads, keeps queued runs, records every request and fails on cue."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.runs: dict[str, dict[str, Any]] = {FINISHED_RUN: fixture("run_success.json")}
        self.machines: list[dict[str, Any]] = fixture("machines.json")
        self.deployments: list[Any] = fixture("deployments.json")
        self.ignore_offset = False
        self._faults: dict[tuple[str, str], list[Fault]] = {}

    def fail_next(self, method: str, path: str, *faults: Fault) -> None:
        """Answer the next requests to ``method path`` with these responses or transport errors."""
        self._faults.setdefault((method, "/api" + path), []).extend(faults)

    def attempts(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == "/api" + path)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if faults := self._faults.get((request.method, request.url.path)):
            fault = faults.pop(0)
            if isinstance(fault, httpx.Response):
                return fault
            raise fault("injected", request=request)
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return httpx.Response(401, json=fixture("error_401.json"))
        return self._route(request)

    def _route(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.raw_path.decode().split("?")[0].removeprefix("/api/").split("/")
        match request.method, parts:
            case "POST", ["run", "deployment", "queue"]:
                return self._queue(json.loads(request.content))
            case "GET", ["run", run_id]:
                run = self.runs.get(run_id)
                return httpx.Response(200, json=run) if run else httpx.Response(404, json={"detail": "Run not found"})
            case "POST", ["run", run_id, "cancel"]:
                if run_id not in self.runs:
                    return httpx.Response(500, json=fixture("cancel_quirk_500.json"))
                self.runs[run_id]["status"] = "cancelled"
                return httpx.Response(200, json=fixture("cancel_response.json"))
            case "GET", ["deployments"]:
                return httpx.Response(200, json=self.deployments)
            case "GET", ["machines"]:
                return httpx.Response(200, json=self._page(request, self.machines))
            case "GET", ["workflows"]:
                return httpx.Response(200, json=self._page(request, fixture("workflows.json")))
            case "GET", ["workflow", workflow_id, "versions"]:
                versions = [v for v in fixture("workflow_versions.json") if v["workflow_id"] == workflow_id]
                return httpx.Response(200, json=self._page(request, versions))
            case "POST", ["file", "upload"]:
                return httpx.Response(200, json=fixture("upload_response.json"))
        return httpx.Response(404, json={"detail": "Not Found"})

    def _queue(self, body: dict[str, Any]) -> httpx.Response:
        if "deployment_id" not in body:
            return httpx.Response(422, json=fixture("error_422.json"))
        run_id = f"run-{len(self.runs)}"
        self.runs[run_id] = {**fixture("run_running.json"), "id": run_id}
        return httpx.Response(200, json={"run_id": run_id})

    def _page(self, request: httpx.Request, items: list[Any]) -> list[Any]:
        limit = int(request.url.params.get("limit", 100))
        offset = 0 if self.ignore_offset else int(request.url.params.get("offset", 0))
        return items[offset : offset + limit]


@pytest.fixture(autouse=True)
def no_real_backoff() -> Iterator[None]:
    """Backoffs become zero; the backend's own attempt limit still applies."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture
def fake() -> FakeComfyDeploy:
    return FakeComfyDeploy()


@pytest.fixture
async def http(fake: FakeComfyDeploy) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handle)) as client:
        yield client


@pytest.fixture
def backend(http: httpx.AsyncClient) -> ComfyDeployBackend:
    return ComfyDeployBackend(client=http, base_url=BASE_URL + "/", api_key=API_KEY, retry_attempts=4)


# --- what is sent -----------------------------------------------------------------------------


async def test_queue_run_posts_the_deployment_inputs_and_webhook_with_the_bearer_key(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    run_id = await backend.queue_run(
        deployment_id=DEPLOYMENT,
        inputs={"input_text": "a red fox", "input_seed": 42},
        webhook_url="https://n.test/h",
    )

    (request,) = fake.requests
    assert (request.method, str(request.url)) == ("POST", f"{BASE_URL}/run/deployment/queue")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(request.content) == {
        "deployment_id": DEPLOYMENT,
        "inputs": {"input_text": "a red fox", "input_seed": 42},
        "webhook": "https://n.test/h",
        "webhook_intermediate_status": True,
    }
    assert request.extensions["timeout"] == {"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    assert run_id in fake.runs


async def test_queue_run_without_a_webhook_sends_no_webhook_fields(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)
    assert json.loads(fake.requests[0].content) == {"deployment_id": DEPLOYMENT, "inputs": {}}


async def test_get_run_reads_the_run_and_its_outputs(backend: ComfyDeployBackend, fake: FakeComfyDeploy) -> None:
    update = await backend.get_run(FINISHED_RUN)

    assert (fake.requests[0].method, fake.requests[0].url.path) == ("GET", f"/api/run/{FINISHED_RUN}")
    assert update.status is RunStatus.SUCCESS
    assert update.gpu == "A10G"
    assert [o.kind for o in update.outputs] == [
        OutputKind.IMAGE,
        OutputKind.VIDEO,
        OutputKind.ANIMATION,
        OutputKind.TEXT,
    ]


async def test_a_queued_run_can_be_read_back_and_cancelled(backend: ComfyDeployBackend, fake: FakeComfyDeploy) -> None:
    run_id = await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)
    assert (await backend.get_run(run_id)).status is RunStatus.RUNNING

    await backend.cancel_run(run_id)

    assert (fake.requests[-1].method, fake.requests[-1].url.path) == ("POST", f"/api/run/{run_id}/cancel")
    assert (await backend.get_run(run_id)).status is RunStatus.CANCELLED


async def test_a_run_id_cannot_reach_another_endpoint(backend: ComfyDeployBackend, fake: FakeComfyDeploy) -> None:
    with pytest.raises(BackendRejected):
        await backend.get_run("../deployments")
    assert fake.requests[0].url.raw_path == b"/api/run/..%2Fdeployments"


async def test_cancel_of_an_unknown_run_is_done_despite_the_servers_500(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    await backend.cancel_run("run-that-finished-long-ago")
    assert fake.attempts("POST", "/run/run-that-finished-long-ago/cancel") == 1


async def test_cancel_answered_with_a_plain_404_is_also_done(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("POST", "/run/r-1/cancel", httpx.Response(404, json=fixture("error_404_run.json")))
    await backend.cancel_run("r-1")


async def test_a_500_on_cancel_that_is_not_the_404_quirk_is_retried_then_unavailable(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("POST", "/run/r-1/cancel", *[httpx.Response(500, json={"detail": "boom"})] * 4)
    with pytest.raises(BackendUnavailable):
        await backend.cancel_run("r-1")
    assert fake.attempts("POST", "/run/r-1/cancel") == 4


# --- catalog ----------------------------------------------------------------------------------


async def test_list_deployments_returns_every_environment(backend: ComfyDeployBackend, fake: FakeComfyDeploy) -> None:
    deployments = await backend.list_deployments()

    assert fake.requests[0].url.path == "/api/deployments"
    assert [(d.name, d.environment) for d in deployments] == [
        ("txt2img", "production"),
        ("upscaler (staging)", "staging"),
    ]


async def test_a_malformed_deployment_is_skipped_and_the_rest_are_kept(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, caplog: pytest.LogCaptureFixture
) -> None:
    fake.deployments = [{"no": "id"}, *fake.deployments]
    assert len(await backend.list_deployments()) == 2
    assert "malformed deployment" in caplog.text


async def test_list_machines_asks_for_pages_and_upper_cases_the_gpu(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    machines = await backend.list_machines()

    (request,) = fake.requests
    assert request.url.path == "/api/machines"
    assert dict(request.url.params) == {"limit": "100", "offset": "0"}
    assert [m.gpu for m in machines] == ["A10G", "L4"]


async def test_list_machines_follows_pages_until_a_short_one(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.machines = [{"id": f"m-{i}", "name": f"m{i}", "gpu": "t4"} for i in range(230)]

    machines = await backend.list_machines()

    assert [r.url.params["offset"] for r in fake.requests] == ["0", "100", "200"]
    assert [m.id for m in machines] == [f"m-{i}" for i in range(230)]


async def test_paging_stops_when_the_server_ignores_the_offset(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.machines = [{"id": f"m-{i}", "gpu": "T4"} for i in range(100)]
    fake.ignore_offset = True

    assert len(await backend.list_machines()) == 100
    assert len(fake.requests) == 2


async def test_list_workflows_and_their_versions_newest_first(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    workflows = await backend.list_workflows()
    versions = await backend.list_workflow_versions(WORKFLOW)

    assert [w.name for w in workflows] == ["txt2img", "upscaler"]
    assert fake.requests[1].url.path == f"/api/workflow/{WORKFLOW}/versions"
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].workflow_api["6"]["inputs"]["input_id"] == "input_text"


async def test_upload_file_sends_multipart_with_the_field_file(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    uploaded = await backend.upload_file(filename="cat.png", content=b"\x89PNG-bytes", content_type="image/png")

    (request,) = fake.requests
    assert (request.method, request.url.path) == ("POST", "/api/file/upload")
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'Content-Disposition: form-data; name="file"; filename="cat.png"' in request.content
    assert b"Content-Type: image/png" in request.content
    assert b"\x89PNG-bytes" in request.content
    assert uploaded == UploadedFile(
        file_id="f_7c1e2d3a4b5c",
        url="https://comfy-deploy-output.s3.amazonaws.com/inputs/f_7c1e2d3a4b5c/cat.png",
    )


# --- retries ----------------------------------------------------------------------------------


async def test_a_503_then_a_200_succeeds_on_the_second_attempt(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("GET", f"/run/{FINISHED_RUN}", httpx.Response(503, text="upstream down"))
    assert (await backend.get_run(FINISHED_RUN)).status is RunStatus.SUCCESS
    assert fake.attempts("GET", f"/run/{FINISHED_RUN}") == 2


async def test_a_429_waits_as_long_as_retry_after_asks_without_sleeping_in_tests(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next("GET", "/deployments", httpx.Response(429, headers={"Retry-After": "7"}))
    started = time.monotonic()

    assert len(await backend.list_deployments()) == 2

    assert time.monotonic() - started < 1
    assert fake.attempts("GET", "/deployments") == 2
    assert [getattr(r, "wait_seconds", None) for r in caplog.records if hasattr(r, "wait_seconds")] == [7.0]


async def test_a_retry_after_longer_than_the_maximum_wait_is_capped(
    http: httpx.AsyncClient, fake: FakeComfyDeploy, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ComfyDeployBackend(client=http, base_url=BASE_URL, api_key=API_KEY, retry_max_wait_seconds=5)
    fake.fail_next("GET", "/deployments", httpx.Response(429, headers={"Retry-After": "3600"}))

    await backend.list_deployments()

    (record,) = [r for r in caplog.records if hasattr(r, "wait_seconds")]
    assert (getattr(record, "retry_after_seconds", None), getattr(record, "wait_seconds", None)) == (
        3600.0,
        5.0,
    )


async def test_a_queue_run_answered_429_is_retried_because_the_server_did_not_queue_it(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("POST", "/run/deployment/queue", httpx.Response(429), httpx.Response(429))
    assert await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)
    assert fake.attempts("POST", "/run/deployment/queue") == 3


@pytest.mark.parametrize("status", [500, 503])
async def test_a_queue_run_answered_500_is_sent_once_and_is_a_rejection_the_service_may_fail_over(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, status: int
) -> None:
    fake.fail_next("POST", "/run/deployment/queue", httpx.Response(status, json={"detail": "boom"}))

    with pytest.raises(BackendRejected) as raised:
        await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)

    assert fake.attempts("POST", "/run/deployment/queue") == 1
    assert raised.value.status == status
    assert not isinstance(raised.value, BackendOutcomeUnknown)
    assert len(fake.runs) == 1  # only the recorded finished run: nothing was queued


@pytest.mark.parametrize("status", [502, 504])
async def test_a_queue_run_answered_by_a_gateway_that_gave_up_is_sent_once_and_its_outcome_is_unknown(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, status: int
) -> None:
    fake.fail_next("POST", "/run/deployment/queue", httpx.Response(status, text="<html>gateway</html>"))

    with pytest.raises(BackendOutcomeUnknown, match=f"HTTP {status}"):
        await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)

    assert fake.attempts("POST", "/run/deployment/queue") == 1


async def test_a_cancel_answered_503_is_retried_because_cancelling_twice_is_harmless(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("POST", f"/run/{FINISHED_RUN}/cancel", httpx.Response(503))
    await backend.cancel_run(FINISHED_RUN)
    assert fake.attempts("POST", f"/run/{FINISHED_RUN}/cancel") == 2


async def test_a_queue_run_that_could_not_connect_is_retried(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("POST", "/run/deployment/queue", httpx.ConnectError, httpx.ConnectTimeout)
    assert await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)
    assert fake.attempts("POST", "/run/deployment/queue") == 3


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteTimeout])
async def test_a_queue_run_sent_but_unanswered_is_not_repeated_and_its_outcome_is_unknown(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, error: type[httpx.TransportError]
) -> None:
    fake.fail_next("POST", "/run/deployment/queue", error)

    with pytest.raises(BackendOutcomeUnknown, match="unknown") as raised:
        await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)

    assert fake.attempts("POST", "/run/deployment/queue") == 1
    assert isinstance(raised.value.__cause__, error)


async def test_a_read_timeout_on_an_idempotent_get_is_retried(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("GET", f"/run/{FINISHED_RUN}", httpx.ReadTimeout, httpx.RemoteProtocolError)
    assert (await backend.get_run(FINISHED_RUN)).run_id == FINISHED_RUN
    assert fake.attempts("GET", f"/run/{FINISHED_RUN}") == 3


@pytest.mark.parametrize(
    "fault",
    [httpx.Response(503), httpx.Response(429), httpx.Response(500, json={"detail": "x"}), httpx.ConnectError],
)
async def test_exhausted_retries_make_the_backend_unavailable_after_the_configured_attempts(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, fault: Fault
) -> None:
    fake.fail_next("GET", "/deployments", *[fault] * 4)

    with pytest.raises(BackendUnavailable) as raised:
        await backend.list_deployments()

    assert fake.attempts("GET", "/deployments") == 4
    assert raised.value.__cause__ is not None


# --- rejections and protocol errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"detail": "Invalid machine type"}, "Invalid machine type"),
        (403, {"detail": "Spend limit exceeded"}, "Spend limit exceeded"),
        (404, {"detail": "Deployment not found"}, "Deployment not found"),
        (422, fixture("error_422.json"), "body.deployment_id: Field required"),
        (400, {"code": 400, "message": "Workflow not found"}, "Workflow not found"),
    ],
)
async def test_other_4xx_are_not_retried_and_are_rejections_with_the_servers_reason(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, status: int, body: dict[str, Any], expected: str
) -> None:
    fake.fail_next("POST", "/run/deployment/queue", httpx.Response(status, json=body))

    with pytest.raises(BackendRejected) as raised:
        await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)

    assert fake.attempts("POST", "/run/deployment/queue") == 1
    assert raised.value.status == status
    assert expected in str(raised.value)
    assert json.loads(raised.value.body) == body


async def test_a_wrong_api_key_is_a_401_rejection_that_says_the_key_is_invalid(
    http: httpx.AsyncClient, fake: FakeComfyDeploy
) -> None:
    backend = ComfyDeployBackend(client=http, base_url=BASE_URL, api_key="wrong-key-123")

    with pytest.raises(BackendRejected) as raised:
        await backend.list_workflows()

    assert raised.value.status == 401
    assert "API key" in str(raised.value)
    assert "invalid" in str(raised.value)
    assert "wrong-key-123" not in str(raised.value)
    assert len(fake.requests) == 1


async def test_a_plain_text_401_from_the_old_api_is_understood(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy
) -> None:
    fake.fail_next("GET", "/deployments", httpx.Response(401, text="Revoked token"))
    with pytest.raises(BackendRejected, match="Revoked token"):
        await backend.list_deployments()


@pytest.mark.parametrize(
    ("path", "response", "call"),
    [
        ("/run/deployment/queue", httpx.Response(200, text="<html>oops</html>"), "queue"),
        ("/run/deployment/queue", httpx.Response(200, json={"batch_id": "b-1"}), "queue"),
        (f"/run/{FINISHED_RUN}", httpx.Response(200, json={"status": "running"}), "get"),
        (f"/run/{FINISHED_RUN}", httpx.Response(200, json={"id": FINISHED_RUN, "status": "exploded"}), "get"),
        ("/deployments", httpx.Response(200, json={"deployments": []}), "deployments"),
        ("/file/upload", httpx.Response(200, json={"message": "ok"}), "upload"),
    ],
)
async def test_a_2xx_answer_that_does_not_parse_is_a_protocol_error(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, path: str, response: httpx.Response, call: str
) -> None:
    method = "GET" if call in ("get", "deployments") else "POST"
    fake.fail_next(method, path, response)

    with pytest.raises(BackendProtocolError):
        await CALLS[call](backend)


@pytest.mark.parametrize(
    "fault",
    [
        httpx.Response(400, json={"detail": f"bad header Bearer {API_KEY}"}),
        httpx.Response(401, text=f"Invalid token {API_KEY}"),
        httpx.Response(503, text=API_KEY),
        httpx.Response(200, text=f"not json {API_KEY}"),
        httpx.ReadTimeout,
        httpx.ConnectError,
    ],
)
async def test_the_api_key_never_appears_in_an_error_or_a_log(
    backend: ComfyDeployBackend, fake: FakeComfyDeploy, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next("POST", "/run/deployment/queue", *[fault] * 4)

    with pytest.raises(ExternalServiceError) as raised:
        await backend.queue_run(deployment_id=DEPLOYMENT, inputs={}, webhook_url=None)

    assert API_KEY not in str(raised.value)
    assert API_KEY not in getattr(raised.value, "body", "")
    assert API_KEY not in caplog.text


# --- rate limit -------------------------------------------------------------------------------


async def test_requests_beyond_the_rate_limit_wait_for_capacity(http: httpx.AsyncClient) -> None:
    backend = ComfyDeployBackend(client=http, base_url=BASE_URL, api_key=API_KEY, max_requests_per_second=20)
    started = time.monotonic()

    for _ in range(25):  # 20 fit in the first second's bucket; 5 more need ~0.25 s of drip
        await backend.get_run(FINISHED_RUN)

    assert time.monotonic() - started >= 0.2
