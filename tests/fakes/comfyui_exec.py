"""The fake ComfyUI's queue and its one worker: runs prompts node by node and tells the sockets.

Events follow what the real 0.3.64 sends (see the contract suite): ``execution_start``,
``execution_cached``, per node ``executing`` (and ``executed`` for output nodes), then
``execution_success`` / ``execution_error`` / ``execution_interrupted``, a ``status``, and last
``executing`` with node null. Like the real server, a node whose class, inputs and upstream are
those of the previous prompt is reused from its cache, not run again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.comfyui_nodes import NODES, Context, NodeFailure

Send = Callable[[str, dict[str, Any], str | None], Awaitable[None]]  # (type, data, client id or None: all)


class _Interrupted(Exception):
    """``/interrupt`` arrived for the running prompt."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Item:
    """One queued prompt, as ``/queue`` lists it: ``[number, prompt_id, prompt, extra_data, outputs]``."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    def as_list(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass
class Worker:
    """The queue, the history and the running prompt of one fake server."""

    context: Context
    send: Send
    node_seconds: float = 0.0
    pending: list[Item] = field(default_factory=list)
    running: Item | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    _cache: dict[str, tuple[str, Any]] = field(default_factory=dict)  # node id → (signature, outputs)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _interrupt: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    def put(self, item: Item) -> None:
        self.pending.append(item)
        self.pending.sort(key=lambda i: i.number)
        self._wakeup.set()

    def delete(self, prompt_id: str) -> None:
        self.pending = [i for i in self.pending if i.prompt_id != prompt_id]

    def interrupt(self, prompt_id: str | None) -> None:
        if self.running is not None and prompt_id in (None, self.running.prompt_id):
            self._interrupt.set()

    async def run_forever(self) -> None:
        while True:
            while not self.pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            item = self.pending.pop(0)
            self.running = item
            self._interrupt.clear()
            try:
                await self._execute(item)
            finally:
                self.running = None

    async def _execute(self, item: Item) -> None:
        client = item.extra_data.get("client_id")
        messages: list[list[Any]] = []

        async def tell(kind: str, data: dict[str, Any], *, everyone: bool = False, keep: bool = False) -> None:
            if keep:
                messages.append([kind, data])
            await self.send(kind, data, None if everyone else client)

        pid = item.prompt_id
        await tell("execution_start", {"prompt_id": pid, "timestamp": now_ms()}, keep=True)
        order = _order(item.prompt, item.outputs)
        signatures = _signatures(item.prompt)
        cached = [n for n in order if n in self._cache and self._cache[n][0] == signatures[n]]
        await tell("execution_cached", {"nodes": cached, "prompt_id": pid, "timestamp": now_ms()}, keep=True)
        values: dict[str, Any] = {n: self._cache[n][1] for n in cached}
        outputs: dict[str, Any] = {}
        executed: list[str] = []
        status, node = "success", None
        try:
            for node in order:
                if node in cached:  # a cached output node's output is sent again
                    await _tell_output(tell, pid, node, values[node], outputs)
                    continue
                await tell("executing", {"node": node, "display_node": node, "prompt_id": pid})
                if self._interrupt.is_set():  # the real server checks as a node begins
                    raise _Interrupted
                await self._pause()
                values[node] = await self._run_node(item.prompt[node], values)
                executed.append(node)
                await _tell_output(tell, pid, node, values[node], outputs)
        except _Interrupted:
            assert node is not None  # raised only inside the loop, as a node begins
            status = "interrupted"
            data = {
                "prompt_id": pid,
                "node_id": node,
                "node_type": item.prompt[node]["class_type"],
                "executed": executed,
            }
            await tell("execution_interrupted", {**data, "timestamp": now_ms()}, everyone=True, keep=True)
        except NodeFailure as exc:
            status = "error"
            await tell("execution_error", _error_data(pid, node, item, executed, exc), keep=True)
        else:
            await tell("execution_success", {"prompt_id": pid, "timestamp": now_ms()}, keep=True)
        self._cache = {n: (signatures[n], values[n]) for n in values}
        self.history[pid] = _history_entry(item, outputs if status == "success" else {}, status, messages)
        await self.send("status", {"status": {"exec_info": {"queue_remaining": len(self.pending)}}}, None)
        await tell("executing", {"node": None, "prompt_id": pid})

    async def _pause(self) -> None:
        """The node's configured time; an interrupt ends it at once."""
        if self.node_seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._interrupt.wait(), self.node_seconds)
        except TimeoutError:
            return
        raise _Interrupted

    async def _run_node(self, node: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
        inputs = {k: (values[v[0]][v[1]] if isinstance(v, list) else v) for k, v in node["inputs"].items()}
        run = NODES[node["class_type"]].run
        assert run is not None, "validation lets no node without a run through"
        return await asyncio.to_thread(run, self.context, inputs)


async def _tell_output(
    tell: Callable[[str, dict[str, Any]], Awaitable[None]], pid: str, node: str, value: Any, outputs: dict[str, Any]
) -> None:
    """An output node's output (a dict; other nodes' values are not) kept for the history and told as ``executed``."""
    if isinstance(value, dict):
        outputs[node] = value
        await tell("executed", {"node": node, "display_node": node, "output": value, "prompt_id": pid})


def _order(prompt: Mapping[str, Any], outputs: list[str]) -> list[str]:
    """Every node the outputs need, each after the nodes it reads from."""
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in prompt[node_id].get("inputs", {}).values():
            if isinstance(value, list):
                visit(str(value[0]))
        order.append(node_id)

    for output in sorted(outputs, key=lambda n: (len(n), n)):
        visit(output)
    return order


def _signatures(prompt: Mapping[str, Any]) -> dict[str, str]:
    """A node's identity for the cache: its class, its literal inputs and its upstream's identities."""
    found: dict[str, str] = {}

    def sign(node_id: str) -> str:
        if node_id not in found:
            node = prompt[node_id]
            parts = {
                k: (f"<{sign(str(v[0]))}:{v[1]}>" if isinstance(v, list) else repr(v))
                for k, v in sorted(node.get("inputs", {}).items())
            }
            found[node_id] = f"{node['class_type']}{parts}"
        return found[node_id]

    for node_id in prompt:
        sign(node_id)
    return found


def _error_data(pid: str, node: str | None, item: Item, executed: list[str], exc: NodeFailure) -> dict[str, Any]:
    class_type = item.prompt[node]["class_type"] if node else ""
    return {
        "prompt_id": pid,
        "node_id": node,
        "node_type": class_type,
        "executed": executed,
        "exception_message": str(exc),
        "exception_type": exc.exception_type,
        "traceback": [f'  File "fake_comfyui/nodes.py", line 1, in {class_type}\n'],
        "current_inputs": {},
        "current_outputs": executed,
        "timestamp": now_ms(),
    }


def _history_entry(item: Item, outputs: dict[str, Any], status: str, messages: list[list[Any]]) -> dict[str, Any]:
    return {
        "prompt": item.as_list(),
        "outputs": outputs,
        "status": {
            "status_str": "success" if status == "success" else "error",
            "completed": status == "success",
            "messages": messages,
        },
        "meta": {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in outputs},
    }
