"""A faithful fake ComfyUI 0.3.64 server: the real routes and shapes, a few model-free nodes run for real.

Served by uvicorn on a free loopback port in a thread of its own (``start``/``stop``), so a test
talks to it over real HTTP and a real websocket, like to the real peer. It also does what a real
server cannot do on demand: ``drop_sockets`` (the websocket dies), ``restart`` (queue and history
lost), a slow ``/view`` (``view_delay``), a slow ``/upload/image`` (``upload_delay``) and a slow answer to
``POST /prompt`` (``prompt_answer_delay``). Every route is also under ``/api``, as on the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.comfyui_exec import Item, Worker
from tests.fakes.comfyui_nodes import IMAGE_EXTENSIONS, NODES, Context, object_info
from tests.fakes.comfyui_validate import validate_prompt

VERSION = "0.3.64"


class FakeComfyUI:
    """State, routes and server of one fake ComfyUI; ``node_seconds`` is each node's run time."""

    def __init__(self, root: Path, *, node_seconds: float = 0.0) -> None:
        self.root = root
        self.context = Context(root)
        self.worker = Worker(self.context, self._send, node_seconds=node_seconds)
        self.view_delay = 0.0  #: seconds /view waits before answering
        self.upload_delay = 0.0  #: seconds /upload/image waits before answering (a large picture)
        #: seconds POST /prompt waits before answering, the prompt already queued (a slow way back)
        self.prompt_answer_delay = 0.0
        self.refuse_sockets = False  #: turn every websocket away (a proxy that lost its upgrade path)
        self.number = 0
        self.sockets: dict[str, WebSocket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = Starlette(routes=self._routes())

    @property
    def node_seconds(self) -> float:
        return self.worker.node_seconds

    @node_seconds.setter
    def node_seconds(self, value: float) -> None:
        self.worker.node_seconds = value

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- the server in a thread ---------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> str:
        """Serve on a free port of 127.0.0.1; returns the base URL once it accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, log_level="warning", access_log=False)
        self._server = server = uvicorn.Server(config)

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self.worker.run_forever())
            await server.serve(sockets=[sock])

        self._thread = threading.Thread(
            target=asyncio.run, args=(serve(),), name=f"fake-comfyui-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake ComfyUI did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._call(self._close_sockets(1001))
        if self._task is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
        self._server = self._thread = None  # stopped: a second stop (a test's, then its fixture's) does nothing

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the server's loop from the test's thread."""
        if self._loop is None or self._loop.is_closed():
            coro.close()
            return None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # --- faults on demand ---------------------------------------------------------------------

    def drop_sockets(self) -> int:
        """Close every websocket as a crashing server would (1011); returns how many there were."""
        return int(self._call(self._close_sockets(1011)) or 0)

    def restart(self) -> None:
        """Lose the queue, the running prompt, the history and the sockets, as a restarted server does."""
        self._call(self._restart())

    async def _restart(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._close_sockets(1012)
        self.worker.pending.clear()
        self.worker.history.clear()
        self.worker.running = None
        self.number = 0
        self._task = asyncio.create_task(self.worker.run_forever())

    async def _close_sockets(self, code: int) -> int:
        sockets, self.sockets = list(self.sockets.values()), {}
        for ws in sockets:
            with contextlib.suppress(RuntimeError):  # already closed
                await ws.close(code)
        return len(sockets)

    async def _send(self, kind: str, data: dict[str, Any], client_id: str | None) -> None:
        targets = list(self.sockets.items()) if client_id is None else [(client_id, self.sockets.get(client_id))]
        for sid, ws in targets:
            if ws is None:
                continue
            try:
                await ws.send_json({"type": kind, "data": data})
            except (RuntimeError, OSError, WebSocketDisconnect):
                self.sockets.pop(sid, None)

    async def _status(self) -> None:
        await self._send("status", {"status": {"exec_info": {"queue_remaining": self.worker.remaining}}}, None)

    # --- routes ------------------------------------------------------------------------------

    def _routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Any, list[str]]] = [
            ("/prompt", self.get_prompt, ["GET"]),
            ("/prompt", self.post_prompt, ["POST"]),
            ("/history", self.get_history, ["GET"]),
            ("/history", self.post_history, ["POST"]),
            ("/history/{prompt_id}", self.get_history_item, ["GET"]),
            ("/queue", self.get_queue, ["GET"]),
            ("/queue", self.post_queue, ["POST"]),
            ("/interrupt", self.post_interrupt, ["POST"]),
            ("/view", self.view, ["GET"]),
            ("/upload/image", self.upload_image, ["POST"]),
            ("/object_info", self.get_object_info, ["GET"]),
            ("/object_info/{node_class}", self.get_object_info_class, ["GET"]),
            ("/system_stats", self.system_stats, ["GET"]),
        ]
        routes: list[BaseRoute] = []
        for prefix in ("", "/api"):
            routes += [Route(prefix + path, handler, methods=methods) for path, handler, methods in table]
            routes.append(WebSocketRoute(prefix + "/ws", self.websocket))
        return routes

    async def websocket(self, ws: WebSocket) -> None:
        if self.refuse_sockets:
            await ws.close(1013)
            return
        await ws.accept()
        sid = ws.query_params.get("clientId") or uuid.uuid4().hex
        self.sockets[sid] = ws
        await ws.send_json(
            {
                "type": "status",
                "data": {"status": {"exec_info": {"queue_remaining": self.worker.remaining}}, "sid": sid},
            }
        )
        try:
            while True:
                await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if self.sockets.get(sid) is ws:
                del self.sockets[sid]

    async def get_prompt(self, request: Request) -> Response:
        return JSONResponse({"exec_info": {"queue_remaining": self.worker.remaining}})

    async def post_prompt(self, request: Request) -> Response:
        body = await request.json()
        number = self.number
        if body.get("front"):
            number = -number
        self.number += 1
        if "prompt" not in body:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return JSONResponse({"error": error, "node_errors": {}}, status_code=400)
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        ok, error, outputs, node_errors = validate_prompt(
            body["prompt"], self.context.folder("input"), body.get("partial_execution_targets")
        )
        if not ok:
            return JSONResponse({"error": error, "node_errors": node_errors}, status_code=400)
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        self.worker.put(Item(number, prompt_id, body["prompt"], extra, outputs))
        await self._status()
        if self.prompt_answer_delay:
            await asyncio.sleep(self.prompt_answer_delay)
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def get_history(self, request: Request) -> Response:
        items = list(self.worker.history.items())
        if (max_items := request.query_params.get("max_items")) is not None:
            items = items[-int(max_items) :]
        return JSONResponse(dict(items))

    async def get_history_item(self, request: Request) -> Response:
        prompt_id = request.path_params["prompt_id"]
        entry = self.worker.history.get(prompt_id)
        return JSONResponse({prompt_id: entry} if entry is not None else {})

    async def post_history(self, request: Request) -> Response:
        body = await request.json()
        if body.get("clear"):
            self.worker.history.clear()
        for prompt_id in body.get("delete", []):
            self.worker.history.pop(prompt_id, None)
        return Response(status_code=200)

    async def get_queue(self, request: Request) -> Response:
        running = [self.worker.running.as_list()] if self.worker.running else []
        return JSONResponse({"queue_running": running, "queue_pending": [i.as_list() for i in self.worker.pending]})

    async def post_queue(self, request: Request) -> Response:
        body = await request.json()
        if body.get("clear"):
            self.worker.pending.clear()
        for prompt_id in body.get("delete", []):
            self.worker.delete(prompt_id)
        return Response(status_code=200)

    async def post_interrupt(self, request: Request) -> Response:
        raw = await request.body()
        body = await request.json() if raw.strip() else {}
        self.worker.interrupt(body.get("prompt_id") if isinstance(body, dict) else None)
        return Response(status_code=200)

    async def view(self, request: Request) -> Response:
        q = request.query_params
        filename, subfolder, kind = q.get("filename", ""), q.get("subfolder", ""), q.get("type", "output")
        if not filename or filename.startswith("/") or ".." in filename or kind not in ("output", "input", "temp"):
            return Response(status_code=400)
        base = self.context.folder(kind).resolve()
        folder = (base / subfolder).resolve()
        if folder != base and base not in folder.parents:
            return Response(status_code=403)
        path = folder / filename
        if not path.is_file():
            return Response(status_code=404)
        if self.view_delay:
            await asyncio.sleep(self.view_delay)
        media = {".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
        return FileResponse(path, media_type=media.get(path.suffix.lower(), "application/octet-stream"))

    async def upload_image(self, request: Request) -> Response:
        if self.upload_delay:
            await asyncio.sleep(self.upload_delay)
        form = await request.form()
        upload = form.get("image")
        if upload is None or isinstance(upload, str) or not upload.filename:
            return Response(status_code=400)
        kind = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        folder = self.context.folder(kind if kind in ("input", "temp", "output") else "input") / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        content = await upload.read()
        name = Path(upload.filename).name
        overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
        # As the real one: an existing file with other bytes makes "name (1).ext"; equal bytes keep it.
        stem, suffix, n = Path(name).stem, Path(name).suffix, 1
        while not overwrite and (folder / name).exists():
            if hashlib.sha256((folder / name).read_bytes()).digest() == hashlib.sha256(content).digest():
                break
            name, n = f"{stem} ({n}){suffix}", n + 1
        (folder / name).write_bytes(content)
        return JSONResponse({"name": name, "subfolder": subfolder, "type": kind})

    def _input_files(self) -> list[str]:
        return [p.name for p in self.context.folder("input").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]

    async def get_object_info(self, request: Request) -> Response:
        files = self._input_files()
        return JSONResponse({name: object_info(name, node, input_files=files) for name, node in NODES.items()})

    async def get_object_info_class(self, request: Request) -> Response:
        name = request.path_params["node_class"]
        if name not in NODES:
            return JSONResponse({})
        return JSONResponse({name: object_info(name, NODES[name], input_files=self._input_files())})

    async def system_stats(self, request: Request) -> Response:
        system = {
            "os": "posix",
            "ram_total": 8 * 2**30,
            "ram_free": 4 * 2**30,
            "comfyui_version": VERSION,
            "python_version": "3.11 (fake)",
            "pytorch_version": "none",
            "embedded_python": False,
            "argv": ["main.py", "--cpu"],
        }
        device = {"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0}
        return JSONResponse({"system": system, "devices": [device]})
