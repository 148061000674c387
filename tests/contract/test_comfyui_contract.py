"""One suite over the fake ComfyUI and the real 0.3.64 peer: what the client relies on, both must do.

Every graph carries something unique (a colour, an uploaded image, a prefix) because the real server
reuses the outputs of nodes identical to the previous prompt's instead of running them again.
"""

from __future__ import annotations

import asyncio
import io
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from PIL import Image

from noema.adapters.backends.comfyui import (
    ComfyUIClient,
    EventListener,
    OutputKind,
    PromptResult,
    PromptState,
    PromptStatus,
    fold_events,
)
from noema.adapters.backends.comfyui.events import (
    Connected,
    Event,
    Executed,
    Executing,
    ExecutionCached,
    ExecutionStart,
    ExecutionSuccess,
)
from noema.domain.errors import BackendPromptInvalid
from tests.contract.conftest import Server

WAIT = 60.0  # seconds; the real peer on 2 shared cores can be slow


def _png(width: int, height: int) -> tuple[bytes, Image.Image]:
    rng = random.Random()
    image = Image.new("RGB", (width, height))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(width * height)])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue(), image


def _colour() -> int:
    return random.randrange(0, 0xFFFFFF)


async def _finished(client: ComfyUIClient, prompt_id: str, seconds: float = WAIT) -> PromptResult:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        result = await client.history(prompt_id)
        if result is not None:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"prompt {prompt_id} did not finish within {seconds}s; queue: {await client.queue()}")


def _big_job() -> dict[str, Any]:
    """About 3-5 s on the real peer's CPU: long enough to see it run, delete and interrupt."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 2048, "height": 2048, "batch_size": 16, "color": _colour()},
        },
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 5, "sigma": 2.0}},
        "3": {
            "class_type": "ImageSharpen",
            "inputs": {"image": ["2", 0], "sharpen_radius": 3, "sigma": 1.0, "alpha": 1.0},
        },
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }


@asynccontextmanager
async def _listening(server: Server, client: ComfyUIClient) -> AsyncIterator[asyncio.Queue[Event]]:
    """The client's websocket, its events put on a queue, open before the block begins."""
    events: asyncio.Queue[Event] = asyncio.Queue()
    listener = EventListener(server.url, client_id=client.client_id, initial_backoff=0.1, max_backoff=0.5)

    async def pump() -> None:
        async for event in listener.events():
            await events.put(event)

    task = asyncio.create_task(pump())
    try:
        first = await asyncio.wait_for(events.get(), 10)
        assert isinstance(first, Connected), first
        yield events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until_done(events: asyncio.Queue[Event], prompt_id: str) -> list[Event]:
    seen: list[Event] = []
    while True:
        event = await asyncio.wait_for(events.get(), WAIT)
        if getattr(event, "prompt_id", None) == prompt_id:
            seen.append(event)
            if isinstance(event, Executing) and event.node is None:
                return seen


async def test_an_uploaded_image_inverted_comes_back_as_a_png_of_its_size(client: ComfyUIClient) -> None:
    content, original = _png(5, 3)
    name = await client.upload_image("in put.png", content, "image/png")
    assert name.endswith("in_put.png") and name != "in_put.png"
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": f"c{uuid.uuid4().hex[:8]}"}},
    }
    result = await _finished(client, await client.queue_prompt(graph))
    assert result.status is PromptStatus.SUCCESS, result
    [output] = result.outputs
    assert (output.node_id, output.kind, output.type) == ("3", OutputKind.IMAGE, "output")
    data = await client.view(output.filename, output.subfolder, output.type)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as made:
        assert made.size == (5, 3)
        pixel, inverted = original.getpixel((0, 0)), made.convert("RGB").getpixel((0, 0))
        assert isinstance(pixel, tuple) and isinstance(inverted, tuple), (pixel, inverted)  # RGB: a band each
        r, g, b = pixel
        # The real server goes through float32 and truncates back to 8 bits: off by one at most.
        assert all(abs(a - b) <= 1 for a, b in zip(inverted, (255 - r, 255 - g, 255 - b), strict=True)), inverted
    assert result.started_at is not None and result.ended_at is not None
    assert result.started_at <= result.ended_at


async def test_uploading_the_same_name_twice_stores_two_names(client: ComfyUIClient) -> None:
    content, _ = _png(2, 2)
    first = await client.upload_image("same.png", content, "image/png")
    second = await client.upload_image("same.png", content, "image/png")
    assert first != second


async def test_a_prompt_missing_an_input_is_refused_naming_the_node(client: ComfyUIClient) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}},
    }
    with pytest.raises(BackendPromptInvalid) as caught:
        await client.queue_prompt(graph)
    assert caught.value.message == "SaveImage: Required input is missing: images"
    assert caught.value.node_errors["2"]["class_type"] == "SaveImage"
    assert caught.value.status == 400


async def test_a_missing_model_is_refused_naming_the_loader_and_the_file(client: ComfyUIClient) -> None:
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
    }
    with pytest.raises(BackendPromptInvalid) as caught:
        await client.queue_prompt(graph)
    assert caught.value.message == "CheckpointLoaderSimple: Value not in list: ckpt_name: 'sdxl.safetensors' not in []"


async def test_an_unknown_node_class_is_refused_with_the_servers_sentence(client: ComfyUIClient) -> None:
    with pytest.raises(BackendPromptInvalid) as caught:
        await client.queue_prompt({"1": {"class_type": "NoSuchNode", "inputs": {}}})
    assert caught.value.message == "Cannot execute because node NoSuchNode does not exist.: Node ID '#1'"
    assert caught.value.node_errors == {}


async def test_a_runtime_error_ends_in_history_as_error_with_its_text(client: ComfyUIClient) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": _colour()}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "err"}},
    }
    result = await _finished(client, await client.queue_prompt(graph))
    assert result.status is PromptStatus.ERROR
    assert result.outputs == ()
    assert result.error is not None
    assert result.error.startswith("ImageBlur: Argument #4: Padding size should be less than")
    assert "File " not in result.error and not result.error.endswith("\n")
    assert result.started_at is not None and result.ended_at is not None
    assert result.started_at <= result.ended_at


async def test_socket_events_come_in_the_documented_order_and_end_with_executing_null(
    server: Server, client: ComfyUIClient
) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": _colour()}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ws"}},
    }
    async with _listening(server, client) as events:
        prompt_id = await client.queue_prompt(graph)
        seen = await _until_done(events, prompt_id)
    kinds = [type(e).__name__ for e in seen]
    assert kinds == [
        "ExecutionStart",
        "ExecutionCached",
        "Executing",
        "Executing",
        "Executing",
        "Executed",
        "ExecutionSuccess",
        "Executing",
    ], kinds
    assert [e.node for e in seen if isinstance(e, Executing)] == ["1", "2", "3", None]
    assert isinstance(seen[0], ExecutionStart) and isinstance(seen[-2], ExecutionSuccess)
    assert seen[0].at is not None and seen[-2].at is not None and seen[0].at <= seen[-2].at
    executed = next(e for e in seen if isinstance(e, Executed))
    assert executed.node == "3" and executed.output["images"][0]["type"] == "output"
    states = {prompt_id: PromptState(prompt_id, node_count=3)}
    for event in seen:
        states = fold_events(states, event)
    assert states[prompt_id].done and states[prompt_id].outcome is PromptStatus.SUCCESS
    assert states[prompt_id].progress == 1.0


async def test_the_same_prompt_again_is_served_from_the_cache_in_no_time(server: Server, client: ComfyUIClient) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": _colour()}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cache"}},
    }
    first = await _finished(client, await client.queue_prompt(graph))
    async with _listening(server, client) as events:
        prompt_id = await client.queue_prompt(graph)
        seen = await _until_done(events, prompt_id)
    again = await _finished(client, prompt_id)
    assert again.status is PromptStatus.SUCCESS
    assert set(again.cached_nodes) == {"1", "2"}
    assert again.outputs == first.outputs  # the same file: nothing was made again
    started, ended = again.started_at, again.ended_at
    assert started == ended or (started is not None and ended is not None and (ended - started).total_seconds() < 0.05)
    assert [e.node for e in seen if isinstance(e, Executing)] == [None]
    assert any(isinstance(e, ExecutionCached) and set(e.nodes) == {"1", "2"} for e in seen)


async def test_an_animation_and_a_preview_are_told_apart(client: ComfyUIClient) -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 3, "color": _colour()}},
        "2": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {
                "images": ["1", 0],
                "filename_prefix": "anim",
                "fps": 6.0,
                "lossless": True,
                "quality": 80,
                "method": "default",
            },
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    result = await _finished(client, await client.queue_prompt(graph))
    by_node = {o.node_id: o for o in result.outputs}
    assert by_node["2"].kind is OutputKind.ANIMATION and by_node["2"].filename.endswith(".webp")
    assert by_node["3"].kind is OutputKind.IMAGE and by_node["3"].type == "temp"
    assert len([o for o in result.outputs if o.node_id == "3"]) == 3
    data = await client.view(by_node["2"].filename, by_node["2"].subfolder, by_node["2"].type)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"


async def test_a_pending_prompt_is_deleted_and_a_running_one_interrupted(server: Server, client: ComfyUIClient) -> None:
    if server.fake is not None:
        server.fake.node_seconds = 1.0
    running = await client.queue_prompt(_big_job())
    waiting = await client.queue_prompt(_big_job())
    queue = await client.queue()
    assert queue.running == (running,) and queue.pending == (waiting,)
    await client.delete_queued(waiting)
    assert waiting not in await client.queue()
    await client.interrupt(waiting)  # not running: must not touch the running one
    await asyncio.sleep(0.3)
    assert (await client.queue()).running == (running,)
    await client.interrupt(running)
    result = await _finished(client, running)
    assert result.status is PromptStatus.INTERRUPTED
    assert result.outputs == () and result.error is None
    assert result.started_at is not None and result.ended_at is not None and result.started_at <= result.ended_at
    assert await client.history(waiting) is None
    assert await client.queue() == type(queue)()


async def test_object_info_lists_the_nodes_with_bounds_options_and_an_empty_model_list(client: ComfyUIClient) -> None:
    nodes = await client.object_info()
    for name in (
        "EmptyImage",
        "LoadImage",
        "ImageInvert",
        "ImageBlur",
        "ImageScaleBy",
        "SaveImage",
        "SaveAnimatedWEBP",
        "PreviewImage",
    ):
        assert name in nodes, name
    width = nodes["EmptyImage"].inputs["width"]
    assert (width.type, width.min, width.max, width.default, width.required) == ("INT", 1, 16384, 512, True)
    radius = nodes["ImageBlur"].inputs["blur_radius"]
    assert (radius.min, radius.max) == (1, 31)
    sigma = nodes["ImageBlur"].inputs["sigma"]
    assert (sigma.type, sigma.min, sigma.max) == ("FLOAT", 0.1, 10.0)
    method = nodes["ImageScaleBy"].inputs["upscale_method"]
    assert method.type == "COMBO" and method.options is not None and "bilinear" in method.options
    assert nodes["LoadImage"].inputs["image"].upload
    checkpoint = nodes["CheckpointLoaderSimple"].inputs["ckpt_name"]
    assert checkpoint.type == "COMBO" and checkpoint.options == ()
    assert nodes["SaveImage"].output_node and not nodes["EmptyImage"].output_node


async def test_system_stats_tell_the_version(client: ComfyUIClient) -> None:
    stats = await client.system_stats()
    assert stats.comfyui_version == "0.3.64"
    assert "cpu" in stats.devices


async def test_an_unknown_prompt_has_no_history_and_is_in_no_queue(client: ComfyUIClient) -> None:
    unknown = str(uuid.uuid4())
    assert await client.history(unknown) is None
    assert unknown not in await client.queue()
