"""The fold of ComfyUI websocket events into per-prompt state, and the parsing of frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from noema.adapters.backends.comfyui import PromptState, PromptStatus, apply_event, fold_events, parse_event
from noema.adapters.backends.comfyui.events import (
    Event,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    Progress,
    QueueStatus,
    ws_url,
)

PID = "p-1"
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 4, 12, 0, 3, tzinfo=UTC)


def _fold(state: PromptState, *events: Event) -> PromptState:
    for event in events:
        state = apply_event(state, event)
    return state


def test_progress_without_sampler_steps_is_nodes_done_out_of_nodes_in_the_graph() -> None:
    state = _fold(PromptState(PID, node_count=4), ExecutionStart(PID, T0), Executing(PID, "1"), Executing(PID, "2"))
    assert state.running and state.nodes_done == 1 and state.progress == 0.25


def test_cached_nodes_count_as_done() -> None:
    state = _fold(PromptState(PID, node_count=4), ExecutionCached(PID, ("1", "2")), Executing(PID, "3"))
    assert state.nodes_done == 2 and state.progress == 0.5


def test_sampler_steps_give_the_progress_while_that_node_runs() -> None:
    state = _fold(PromptState(PID, node_count=4), Executing(PID, "5"), Progress(PID, "5", 3, 20))
    assert state.progress == 0.15
    after = apply_event(state, Executing(PID, "6"))
    assert after.steps is None and after.progress == 0.25


def test_executing_null_marks_the_prompt_done_after_an_error_too() -> None:
    state = _fold(
        PromptState(PID, node_count=3),
        ExecutionStart(PID, T0),
        Executing(PID, "2"),
        ExecutionError(PID, "2", "ImageBlur: bad padding", T1),
    )
    assert state.outcome is PromptStatus.ERROR and not state.done and state.error == "ImageBlur: bad padding"
    done = apply_event(state, Executing(PID, None))
    assert done.done and (done.started_at, done.ended_at) == (T0, T1)


def test_an_interrupt_of_another_prompt_leaves_this_one_running() -> None:
    states = {PID: _fold(PromptState(PID, node_count=2), ExecutionStart(PID, T0))}
    states = fold_events(states, ExecutionInterrupted("other", "1", T1))
    assert states[PID].running and states[PID].outcome is None
    states = fold_events(states, ExecutionInterrupted(PID, "1", T1))
    assert states[PID].outcome is PromptStatus.INTERRUPTED


def test_events_after_done_change_nothing() -> None:
    done = _fold(PromptState(PID, node_count=1), ExecutionSuccess(PID, T1), Executing(PID, None))
    assert apply_event(done, ExecutionError(PID, "1", "late", T0)) == done
    assert done.progress == 1.0


def test_frames_parse_to_typed_events_and_binary_or_unknown_frames_are_skipped() -> None:
    start = parse_event(json.dumps({"type": "execution_start", "data": {"prompt_id": PID, "timestamp": 1796405502348}}))
    assert start == ExecutionStart(PID, datetime.fromtimestamp(1796405502.348, tz=UTC))
    status = {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 2}}, "sid": "x"}}
    assert parse_event(json.dumps(status)) == QueueStatus(2)
    error = {
        "type": "execution_error",
        "data": {
            "prompt_id": PID,
            "node_id": "2",
            "node_type": "ImageBlur",
            "exception_message": "boom\n",
            "traceback": ["File x"],
        },
    }
    assert parse_event(json.dumps(error)) == ExecutionError(PID, "2", "ImageBlur: boom", None)
    assert parse_event(b"\x00\x00\x00\x01\x89PNG") is None
    assert parse_event(json.dumps({"type": "progress_state", "data": {"prompt_id": PID, "nodes": {}}})) is None
    assert parse_event("not json") is None


def test_the_socket_url_follows_the_base_urls_scheme_and_path() -> None:
    assert ws_url("http://10.0.0.5:8188/", "a b") == "ws://10.0.0.5:8188/ws?clientId=a%20b"
    assert ws_url("https://gpu.example/comfy", "id") == "wss://gpu.example/comfy/ws?clientId=id"
