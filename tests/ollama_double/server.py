"""The double itself (:class:`OllamaDouble`): Ollama's endpoints, its lifecycle in a loop or
a thread, and the control endpoints of the process mode."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.ollama_double.spec import (
    VERSION,
    ModelSpec,
    RecordedRequest,
    Reply,
    _error,
    _eval_reply,
    _now,
    _shape,
    _State,
    _tokens,
)


def _resolve(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():  # (it may have timed out meanwhile)
        future.set_result(value)


class OllamaDouble:
    """The double. Not thread-safe except through :meth:`script`, :meth:`add_model` and
    :attr:`requests`, which take a lock (the thread mode calls them from the test's thread)."""

    def __init__(
        self,
        models: list[str] | tuple[str, ...] | None = ("qwen2.5:1.5b",),
        *,
        pullable: list[str] | tuple[str, ...] = (),
        version: str = VERSION,
    ) -> None:
        self._state = _State()
        self._lock = threading.Lock()
        self.version = version
        for name in models or ():
            self.add_model(name)
        self._state.pullable.update(pullable)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # wait_request's waiters: (path, their loop, their future)
        self._waiters: list[tuple[str, asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []

    # --- configuration (any thread) ---------------------------------------------------------------

    def add_model(self, name: str, **behaviour: Any) -> ModelSpec:
        spec = ModelSpec(name=name, **behaviour)
        with self._lock:
            self._state.models[name] = spec
        return spec

    def remove_model(self, name: str) -> None:
        with self._lock:
            self._state.models.pop(name, None)

    def model(self, name: str) -> ModelSpec:
        return self._state.models[name]

    def script(self, model: str, *replies: Reply | str, kind: str = "answer") -> None:
        """Queue replies for ``model``'s next requests of ``kind`` ("answer" or "judge")."""
        if kind not in ("answer", "judge"):
            raise ValueError(f"kind must be 'answer' or 'judge', not {kind!r}")
        with self._lock:
            queue = self._state.scripts.setdefault((model, kind), deque())
            queue.extend(r if isinstance(r, Reply) else Reply(text=r) for r in replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    async def wait_request(self, path: str, timeout: float = 10.0) -> RecordedRequest:
        """The first request to ``path`` (at once if one came already), woken when it arrives,
        bounded by ``timeout``; from any thread's event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RecordedRequest] = loop.create_future()
        with self._lock:
            seen = [r for r in self._state.requests if r.path == path]
            if not seen:
                self._waiters.append((path, loop, future))
        if seen:
            return seen[0]
        return await asyncio.wait_for(future, timeout)

    def reset(self) -> None:
        with self._lock:
            self._state.scripts.clear()
            self._state.requests.clear()

    # --- lifecycle --------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/generate", self._generate)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_post("/api/show", self._show)
        app.router.add_get("/api/version", self._version)
        app.router.add_post("/api/pull", self._pull)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_get("/", self._root)
        app.router.add_post("/_double/script", self._ctl_script)
        app.router.add_post("/_double/models", self._ctl_models)
        app.router.add_get("/_double/requests", self._ctl_requests)
        app.router.add_post("/_double/reset", self._ctl_reset)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen (port 0 = a free port); returns the base URL."""
        # handler_cancellation: a client that gives up (timeout test) cancels its handler's delay;
        # a short shutdown_timeout keeps close() from waiting out long scripted delays.
        self._runner = web.AppRunner(
            self.make_app(), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        return self.url

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> OllamaDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[OllamaDouble]:
        """Serve from a background thread with its own asyncio loop (for sync or trio tests)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(host, port))
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        thread = threading.Thread(target=serve, name="ollama-double", daemon=True)
        thread.start()
        if not started.wait(30):
            raise RuntimeError("ollama double did not start within 30 s")
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)

    # --- helpers ----------------------------------------------------------------------------------

    def _resolve(self, name: object) -> ModelSpec | None:
        if not isinstance(name, str):
            return None
        with self._lock:
            models = self._state.models
            if name in models:
                return models[name]
            if ":" not in name:
                return models.get(f"{name}:latest")
            if name.endswith(":latest"):
                return models.get(name.removesuffix(":latest"))
        return None

    def _next_reply(self, spec: ModelSpec, kind: str, prompt: str) -> Reply:
        with self._lock:
            queue = self._state.scripts.get((spec.name, kind))
            reply = queue.popleft() if queue else None
        if reply is not None:
            if not reply.text and reply.logprobs:
                reply = dataclasses.replace(
                    reply, text="".join(str(t["token"]) for t in reply.logprobs)
                )
            return reply
        if spec.solves is not None and (text := _eval_reply(spec, kind, prompt)) is not None:
            return Reply(text=text, delay_s=spec.delay_s, chunk_delay_s=spec.chunk_delay_s)
        if kind == "judge":
            text = spec.judge
            if text is None:
                text = json.dumps({"reason": spec.judge_reason, "score": spec.judge_score})
        else:
            text = spec.answer.replace("{model}", spec.name).replace("{prompt}", prompt)
        return Reply(
            text=text, delay_s=spec.delay_s, chunk_delay_s=spec.chunk_delay_s, scripted=False
        )

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid JSON body")
        if not isinstance(body, dict):
            return _error(400, "invalid JSON body")
        recorded = RecordedRequest(request.method, request.path, body)
        with self._lock:
            self._state.requests.append(recorded)
            ready = [w for w in self._waiters if w[0] == request.path]
            self._waiters = [w for w in self._waiters if w[0] != request.path]
        for _, loop, future in ready:  # a waiter may sit on another thread's loop
            loop.call_soon_threadsafe(_resolve, future, recorded)
        return body

    async def _complete(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if not body.get("model"):
            return _error(400, "model is required")
        spec = self._resolve(body["model"])
        if spec is None:
            return _error(404, f'model "{body["model"]}" not found, try pulling it first')
        if chat:
            messages = body.get("messages") or []
            users = [m.get("content", "") for m in messages if isinstance(m, dict)]
            prompt = str(users[-1]) if users else ""
        else:
            prompt = str(body.get("prompt") or "")
        fmt = body.get("format")
        # The judge asks with its {"reason", "score"} schema; an executor may ask for JSON too.
        judging = bool(fmt) and (
            (isinstance(fmt, dict) and "score" in (fmt.get("properties") or {}))
            or bool(self._state.scripts.get((spec.name, "judge")))
        )
        kind = "judge" if judging else "answer"
        tools = body.get("tools") or []
        if tools and not spec.tools:
            return _error(400, f"registry.ollama.ai/library/{spec.name} does not support tools")
        reply = self._next_reply(spec, kind, prompt)
        calls = reply.tool_calls
        if kind == "answer" and reply.status == 200:
            reply, calls = _shape(reply, body, prompt, tools, calls)
        options = body.get("options") or {}
        with self._lock:
            self._state.loaded.add(spec.name)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            return _error(reply.status, reply.error)

        want_logprobs = bool(body.get("logprobs")) and spec.logprobs
        if reply.logprobs is not None:
            token_entries = list(reply.logprobs)
        else:
            token_entries = [
                {"token": t, "logprob": 0.0, "top_logprobs": [{"token": t, "logprob": 0.0}]}
                for t in _tokens(reply.text)
            ]
        limit = options.get("num_predict")
        cut = isinstance(limit, int) and 0 < limit < len(token_entries)
        if cut:
            token_entries = token_entries[:limit]
        chunks = [str(t["token"]) for t in token_entries]
        if cut:
            reply = dataclasses.replace(reply, text="".join(chunks))
        started = time.perf_counter_ns()

        def record(content: str, done: bool, entries: list[dict[str, Any]] | None) -> dict:
            rec: dict[str, Any] = {"model": spec.name, "created_at": _now()}
            if chat:
                rec["message"] = {"role": "assistant", "content": content}
                if done and calls:
                    rec["message"]["tool_calls"] = [
                        {"function": {"name": c["name"], "arguments": c["arguments"]}}
                        for c in calls
                    ]
            else:
                rec["response"] = content
            rec["done"] = done
            if want_logprobs and entries is not None:
                rec["logprobs"] = entries
            if done:
                elapsed = time.perf_counter_ns() - started
                rec.update(
                    done_reason="length" if cut else "stop",
                    total_duration=elapsed + 1_000_000,
                    load_duration=1_000_000,
                    prompt_eval_count=max(1, len(prompt.split())),
                    prompt_eval_duration=500_000,
                    eval_count=len(chunks),
                    eval_duration=max(elapsed, 1),
                )
            return rec

        if body.get("stream", True) is False:
            return web.json_response(record(reply.text, True, token_entries))

        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for i, (chunk, entry) in enumerate(zip(chunks, token_entries, strict=True)):
            if reply.error_after is not None and i == reply.error_after:
                await response.write(json.dumps({"error": reply.error}).encode() + b"\n")
                await response.write_eof()
                return response
            if reply.drop_after is not None and i == reply.drop_after:
                # Cut the connection mid-body, as a crashed server would.
                if request.transport is not None:
                    request.transport.abort()
                return response
            if reply.chunk_delay_s and i:
                await asyncio.sleep(reply.chunk_delay_s)
            await response.write(json.dumps(record(chunk, False, [entry])).encode() + b"\n")
        # The last record carries `message` too, with empty content (a client reads it blindly).
        await response.write(json.dumps(record("", True, [])).encode() + b"\n")
        await response.write_eof()
        return response

    # --- Ollama endpoints -------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=True)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=False)

    def _details(self, spec: ModelSpec) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": spec.family,
            "families": [spec.family],
            "parameter_size": spec.parameter_size,
            "quantization_level": "Q4_K_M",
        }

    async def _tags(self, request: web.Request) -> web.Response:
        with self._lock:
            specs = list(self._state.models.values())
        models = [
            {
                "name": s.name,
                "model": s.name,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 986_000_000,
                "digest": hashlib.sha256(s.name.encode()).hexdigest(),
                "details": self._details(s),
            }
            for s in specs
        ]
        return web.json_response({"models": models})

    async def _show(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        spec = self._resolve(body.get("model") or body.get("name"))
        if spec is None:
            return _error(404, f'model "{body.get("model")}" not found')
        return web.json_response(
            {
                "modelfile": f"FROM {spec.name}",
                "parameters": "temperature 0.7",
                "template": "{{ .Prompt }}",
                "details": self._details(spec),
                "model_info": {
                    "general.architecture": spec.family,
                    "general.parameter_count": 1_500_000_000,
                    f"{spec.family}.context_length": 32768,
                },
                "capabilities": ["completion", "tools"] if spec.tools else ["completion"],
                "modified_at": "2025-01-01T00:00:00Z",
            }
        )

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.version})

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _ps(self, request: web.Request) -> web.Response:
        with self._lock:
            loaded = [
                self._state.models[n] for n in sorted(self._state.loaded) if n in self._state.models
            ]
        return web.json_response(
            {
                "models": [
                    {
                        "name": s.name,
                        "model": s.name,
                        "size": 986_000_000,
                        "digest": "0" * 64,
                        "details": self._details(s),
                        "expires_at": "2099-01-01T00:00:00Z",
                        "size_vram": 0,
                    }
                    for s in loaded
                ]
            }
        )

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name:
            return _error(400, "model is required")
        known = self._resolve(name) is not None or name in self._state.pullable
        stream = body.get("stream", True) is not False
        if not known:
            if not stream:
                return _error(500, "pull model manifest: file does not exist")
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            await response.write(b'{"status":"pulling manifest"}\n')
            await response.write(b'{"error":"pull model manifest: file does not exist"}\n')
            await response.write_eof()
            return response
        if self._resolve(name) is None:
            self.add_model(name)
        if not stream:
            return web.json_response({"status": "success"})
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for status in (
            "pulling manifest",
            "verifying sha256 digest",
            "writing manifest",
            "success",
        ):
            await response.write(json.dumps({"status": status}).encode() + b"\n")
        await response.write_eof()
        return response

    # --- control endpoints (process mode) ---------------------------------------------------------

    async def _ctl_script(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            self.script(
                data["model"], Reply(**data.get("reply", {})), kind=data.get("kind", "answer")
            )
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, f"bad script: {exc}")
        return web.json_response({"ok": True})

    async def _ctl_models(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            self.add_model(**data)
        except TypeError as exc:
            return _error(400, f"bad model: {exc}")
        return web.json_response({"ok": True})

    async def _ctl_requests(self, request: web.Request) -> web.Response:
        return web.json_response([dataclasses.asdict(r) for r in self.requests])

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})
