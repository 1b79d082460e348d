"""One swarm session per request: run it, reply whole or streamed, cancel it when the client goes.

A streamed reply holds its headers back only until the session has its participants (or
``head_start_s`` passed), so early failures still get a real status code; later failures are
reported inside the stream. Keep-alive records flow while the session runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from node.gateway.config import CONFIG_KEY, SESSIONS_KEY, STATE_KEY, GatewayConfig
from node.gateway.errors import ApiError
from node.gateway.queue import QueueFull, SessionQueue
from node.gateway.replies import Dialect, Timing, split_text
from node.gateway.requests import capabilities_of
from node.gateway.swarm import ASSIGNED_STAGES, SwarmResult, SwarmSessions, SwarmUnavailable

log = logging.getLogger(__name__)


def _unavailable(exc: SwarmUnavailable) -> ApiError:
    if exc.code == "invalid_output":
        # Every executor's answer broke the requested format or tools: the leader dropped them.
        return ApiError(422, f"no answer in the requested form: {exc.reason}", exc.code)
    if exc.code == "bad_input":
        return ApiError(400, exc.reason, exc.code)
    return ApiError(503, exc.reason, exc.code)


def check_capabilities(request: web.Request, dialect: Dialect) -> None:
    """Refuse, as Ollama does, what no provider of this swarm can do (400 before any session)."""
    capabilities = capabilities_of(request.app)
    if capabilities is None:
        return
    generation = dialect.generation
    if generation.tools and "tools" not in capabilities:
        raise ApiError(
            400,
            f"{dialect.model} does not support tools (no provider in the swarm announces "
            "tool calling)",
            "unsupported",
        )
    if generation.format is not None and "json" not in capabilities:
        raise ApiError(
            400,
            f"{dialect.model} does not support structured output (no provider announces json)",
            "unsupported",
        )


def _headers(dialect: Dialect) -> dict[str, str]:
    # Accepted but not applied: said in a header too, so nothing is dropped silently.
    return {"X-Rnet-Ignored": ", ".join(dialect.ignored)} if dialect.ignored else {}


async def _outcome(request: web.Request, task: asyncio.Task[SwarmResult]) -> SwarmResult:
    """The finished session's result, or the ApiError that describes its failure."""
    if task.cancelled():
        # Not this request's cancellation (that cancels the handler itself): the gateway is
        # closing, or the node stopped the session from its side.
        if request.app[STATE_KEY].closing:
            raise ApiError(503, "the gateway is shutting down", "unavailable")
        raise ApiError(503, "the swarm session was cancelled on this node", "unavailable")
    exc = task.exception()
    if isinstance(exc, SwarmUnavailable):
        raise _unavailable(exc)
    if exc is not None:
        log.error("gateway: session failed", exc_info=exc)
        raise ApiError(500, "internal error in the swarm session (see the node's log)", "internal")
    result = task.result()
    if not isinstance(result, SwarmResult):
        raise ApiError(500, f"sessions engine returned {type(result).__name__}, not a result")
    if not result.text and not result.tool_calls:
        raise ApiError(503, "the swarm returned an empty answer", "empty_result")
    return result


async def answer_request(
    request: web.Request, dialect: Dialect, stream: bool
) -> web.StreamResponse:
    """Run one session for this request and reply (whole or streamed) in the dialect's shape."""
    check_capabilities(request, dialect)  # before waiting: what the swarm cannot do, it says now
    queue: SessionQueue = request.app[STATE_KEY].queue
    try:
        # Wait for a turn (FIFO) while the swarm is busy; a client that leaves cancels this.
        async with queue.turn():
            return await _answer(request, dialect, stream)
    except QueueFull as exc:
        raise ApiError(
            503, str(exc), "busy", headers={"Retry-After": str(exc.retry_after_s)}
        ) from None


async def _answer(request: web.Request, dialect: Dialect, stream: bool) -> web.StreamResponse:
    cfg: GatewayConfig = request.app[CONFIG_KEY]
    in_flight = request.app[STATE_KEY].in_flight
    sessions: SwarmSessions = request.app[SESSIONS_KEY]
    timing = Timing(started_ns=time.monotonic_ns())
    assigned = asyncio.Event()

    def on_stage(stage: str) -> None:
        if str(stage) in ASSIGNED_STAGES and not assigned.is_set():
            timing.assigned_ns = time.monotonic_ns()
            assigned.set()

    task: asyncio.Task[SwarmResult] = asyncio.ensure_future(
        sessions.run(
            dialect.prompt,
            providers=cfg.providers,
            timeout_s=cfg.timeout_s,
            aggregator=cfg.aggregator,
            on_stage=on_stage,
            generation=dialect.generation,
        )
    )
    in_flight.add(task)
    task.add_done_callback(in_flight.discard)
    deadline = asyncio.get_running_loop().time() + cfg.timeout_s + cfg.grace_s
    try:
        if not stream:
            await _wait_task(task, deadline)
            whole = dialect.whole(await _outcome(request, task), timing)
            return web.json_response(whole, headers=_headers(dialect))
        try:
            return await _stream(request, dialect, task, assigned, deadline, timing)
        except ConnectionResetError:
            # The client hung up mid-stream; the session is cancelled below.
            log.info("gateway: client left %s mid-stream; cancelling its session", request.path)
            raise
    finally:
        await _cancel(task)


async def _wait_task(task: asyncio.Task[SwarmResult], deadline: float) -> None:
    remaining = deadline - asyncio.get_running_loop().time()
    done, _ = await asyncio.wait({task}, timeout=max(0.0, remaining))
    if not done:
        raise ApiError(503, "the swarm session passed its deadline without a result", "deadline")


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel a session that is still running (client gone, deadline) and wait for it to unwind."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        # Retrieved here so asyncio does not warn; _outcome reported it if the reply got that far.
        log.debug("gateway: session ended with %r", task.exception())


def _head_start(request: web.Request) -> float:
    """Seconds a streamed reply may hold its headers: the session's join window, at least
    ``head_start_s`` (a join stage ends early once enough providers are in)."""
    cfg: GatewayConfig = request.app[CONFIG_KEY]
    window = getattr(request.app[SESSIONS_KEY], "join_window_s", None)
    if window is None:
        return cfg.head_start_s
    try:
        return max(cfg.head_start_s, float(window(cfg.timeout_s)) + 1.0)
    except Exception:
        log.exception("gateway: join_window_s() failed")
        return cfg.head_start_s


async def _stream(
    request: web.Request,
    dialect: Dialect,
    task: asyncio.Task[SwarmResult],
    assigned: asyncio.Event,
    deadline: float,
    timing: Timing,
) -> web.StreamResponse:
    cfg: GatewayConfig = request.app[CONFIG_KEY]
    loop = asyncio.get_running_loop()
    # Hold the headers until the session has participants (or its join window passed), so an
    # early failure ("not enough providers") still leaves with a real status code.
    waiter = asyncio.ensure_future(assigned.wait())
    try:
        await asyncio.wait(
            {task, waiter}, timeout=_head_start(request), return_when="FIRST_COMPLETED"
        )
    finally:
        waiter.cancel()
    result = await _outcome(request, task) if task.done() else None

    response = web.StreamResponse(
        headers={
            "Content-Type": dialect.content_type,
            "Cache-Control": "no-cache",
            **_headers(dialect),
        }
    )
    await response.prepare(request)
    await response.write(dialect.opening())
    while result is None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            await _cancel(task)
            await _finish_with_error(
                response, dialect, ApiError(503, "deadline passed", "deadline")
            )
            return response
        done, _ = await asyncio.wait({task}, timeout=min(cfg.keepalive_s, remaining))
        if not done:
            await response.write(dialect.keepalive())
            continue
        try:
            result = await _outcome(request, task)
        except ApiError as exc:
            await _finish_with_error(response, dialect, exc)
            return response
    for piece in split_text(result.text):
        await response.write(dialect.line(dialect.chunk(piece)))
    for record in dialect.tool_records(result):
        await response.write(dialect.line(record))
    await response.write(dialect.line(dialect.final(result, timing)))
    for record in dialect.closing_records(result):
        await response.write(dialect.line(record))
    await response.write(dialect.closing())
    await response.write_eof()
    return response


async def _finish_with_error(response: web.StreamResponse, dialect: Dialect, exc: ApiError) -> None:
    log.warning("gateway: streamed session failed after headers: %s", exc.message)
    await response.write(dialect.stream_error(exc.status, exc.message, exc.code))
    await response.write(dialect.closing())
    await response.write_eof()
