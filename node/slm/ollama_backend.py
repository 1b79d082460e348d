"""The real backend: a model served by Ollama, driven through the official ``ollama`` AsyncClient.

Every call is bounded by an anyio deadline (the client's own default timeout is none), and every
failure of the server or the connection is mapped to :class:`SLMError` with a one-line hint:
nothing reachable -> ``ollama serve``; model absent -> ``ollama pull <model>``. anyio (already a
dependency of httpx) keeps the backend usable from asyncio and from trio.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import httpx
import ollama
import pydantic

from node.slm.base import (
    Backend,
    Generation,
    GenParams,
    Judgement,
    SLMError,
    check_prompt,
    coerce_params,
)
from node.slm.defaults import DEFAULT_HOST, DEFAULT_MODEL, normalise_host
from node.slm.judge import (
    JUDGE_NUM_PREDICT,
    JUDGE_SCHEMA,
    JUDGE_SEED,
    TOP_LOGPROBS,
    JudgeParseError,
    judge_messages,
    logprob_score,
    parse_judgement,
    retry_messages,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Plain text, no JSON wrapper: small models break wrappers (the original's mistake).
SYSTEM_PROMPT = (
    "You are a concise, accurate assistant. Answer the user's question directly in plain text. "
    "If you are not sure, say so briefly; never invent facts."
)
# Without a cap a small model can ramble until the deadline.
DEFAULT_NUM_PREDICT = 512
# How long an unreachable host may take to refuse before we call it unreachable.
CONNECT_TIMEOUT = 5.0


class OllamaBackend(Backend):
    """A model on an Ollama server (``host``, ``model`` per node)."""

    backend = "ollama"
    simulated = False

    def __init__(
        self,
        *,
        name: str,
        model: str = DEFAULT_MODEL,
        host: str = DEFAULT_HOST,
        timeout_gen: float = 120.0,
        timeout_judge: float = 60.0,
        judge_logprobs: bool = False,
        keep_alive: str | float | None = "10m",
        connect_timeout: float = CONNECT_TIMEOUT,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        super().__init__(
            name=name, model=model, timeout_gen=timeout_gen, timeout_judge=timeout_judge
        )
        if not model or not model.strip():
            raise SLMError("model name is empty (set --model or RNET_MODEL)", kind="config")
        self.host = normalise_host(host)
        self.judge_logprobs = judge_logprobs
        self.keep_alive = keep_alive
        self.connect_timeout = connect_timeout
        self.system_prompt = system_prompt
        self.server_version: str | None = None
        self._client: ollama.AsyncClient | None = None
        # Until check() asked the server: JSON output works on every model, tools may not.
        self.capabilities = ("completion", "json")

    # --- plumbing ---------------------------------------------------------------------------------

    @property
    def client(self) -> ollama.AsyncClient:
        # Created on first use so that constructing a backend does no I/O and binds no loop.
        if self._client is None:
            backstop = max(self.timeout_gen, self.timeout_judge) + 5.0
            self._client = ollama.AsyncClient(
                host=self.host, timeout=httpx.Timeout(backstop, connect=self.connect_timeout)
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # The httpx client underneath: AsyncClient.close() is missing from older releases.
            await client._client.aclose()

    def describe(self) -> str:
        return f"ollama {self.model} @ {self.host}"

    def _unreachable(self) -> SLMError:
        return SLMError(
            f"Ollama is not reachable at {self.host} — start it with `ollama serve` "
            "(or point --ollama-host / OLLAMA_HOST at a running server)",
            kind="unreachable",
        )

    def _model_missing(self) -> SLMError:
        return SLMError(
            f"model {self.model} is not pulled on the Ollama at {self.host} — run "
            f"`ollama pull {self.model}`",
            kind="model_missing",
        )

    def _timeout(self, what: str, seconds: float) -> SLMError:
        return SLMError(
            f"Ollama at {self.host} did not {what} within {seconds:g}s (model {self.model})",
            kind="timeout",
        )

    def map_error(self, exc: BaseException, what: str, seconds: float) -> SLMError:
        """Our error for an exception out of the ollama client (or httpx underneath it)."""
        if isinstance(exc, SLMError):
            return exc
        if isinstance(exc, ollama.ResponseError):
            error = str(exc.error)
            # Ollama: 404 'model "x" not found, try pulling it first'. A 404 without "model" is
            # some other server (or a proxy) at that address, not a missing model.
            if "model" in error.lower() and (
                exc.status_code == 404 or "not found" in error.lower()
            ):
                return self._model_missing()
            status = f" (HTTP {exc.status_code})" if exc.status_code and exc.status_code > 0 else ""
            return SLMError(f"Ollama at {self.host} failed: {error[:200]}{status}")
        if isinstance(exc, ollama.RequestError):
            return SLMError(f"bad request to Ollama: {exc.error}", kind="bad_input")
        if isinstance(exc, TimeoutError | httpx.TimeoutException) and not isinstance(
            exc, httpx.ConnectTimeout
        ):
            return self._timeout(what, seconds)
        # The client turns a refused connection into the builtin ConnectionError when not
        # streaming; streaming lets httpx.ConnectError through.
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return self._unreachable()
        if isinstance(exc, httpx.HTTPError):
            return SLMError(
                f"the connection to Ollama at {self.host} broke before it could {what} "
                f"({type(exc).__name__})"
            )
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError | KeyError):
            return SLMError(
                f"Ollama at {self.host} sent a reply we could not read ({type(exc).__name__})",
                kind="bad_response",
            )
        return SLMError(f"Ollama call failed: {type(exc).__name__}: {exc}")

    async def _bounded(self, what: str, seconds: float, call: Callable[[], Awaitable[T]]) -> T:
        try:
            with anyio.fail_after(seconds):
                return await call()
        except Exception as exc:  # mapped, never swallowed
            raise self.map_error(exc, what, seconds) from None

    def _options(self, params: GenParams | Mapping[str, Any] | None) -> dict[str, Any]:
        options = {"num_predict": DEFAULT_NUM_PREDICT}
        options.update(coerce_params(params).to_options())
        return options

    def _chat_messages(self, prompt: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": prompt},
        ]

    # --- Backend ----------------------------------------------------------------------------------

    async def check(self) -> None:
        async def probe() -> None:
            # /api/version first: it answers even when no model is pulled, so "unreachable" and
            # "model missing" are told apart. The client has no method for it, so we use its
            # httpx client (same base URL and headers).
            response = await self.client._client.get("/api/version")
            response.raise_for_status()
            self.server_version = str(response.json().get("version", "?"))
            listing = await self.client.list()
            available = {m.model for m in listing.models if m.model}
            if not _model_available(self.model, available):
                raise self._model_missing()
            shown = await self.client.show(self.model)
            self.capabilities = _capabilities(shown)

        bound = self.connect_timeout + 5.0
        try:
            with anyio.fail_after(bound):
                await probe()
        except httpx.HTTPStatusError as exc:
            raise SLMError(
                f"{self.host} answered HTTP {exc.response.status_code} to /api/version — "
                "is it an Ollama server?",
                kind="unreachable",
            ) from None
        except Exception as exc:  # mapped to SLMError
            raise self.map_error(exc, "answer the start-up check", bound) from None
        log.info("ollama %s at %s serves %s", self.server_version, self.host, self.model)

    async def generate(
        self,
        prompt: str,
        params: GenParams | Mapping[str, Any] | None = None,
        *,
        format: str | Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
        tool_choice: str = "auto",
    ) -> Generation:
        check_prompt(prompt)
        options = self._options(params)
        messages = self._chat_messages(prompt)
        if tools and tool_choice != "auto":
            # Ollama has no tool_choice: say it, the leader drops answers that ignore it.
            must = "one of the tools" if tool_choice == "required" else f"the tool {tool_choice}"
            messages[0] = {**messages[0], "content": f"{self.system_prompt} You must call {must}."}
        started = time.perf_counter()
        response = await self._bounded(
            "answer",
            self.timeout_gen,
            lambda: self.client.chat(
                model=self.model,
                messages=messages,
                options=options,
                format=format,
                tools=list(tools) or None,
                keep_alive=self.keep_alive,
                stream=False,
            ),
        )
        timings = _timings(response, started)
        text = (response.message.content or "").strip()
        calls = tuple(
            {"name": call.function.name, "arguments": dict(call.function.arguments or {})}
            for call in response.message.tool_calls or ()
        )
        if not text and not calls:
            log.warning("model %s returned an empty answer", self.model)
        return Generation(
            text=text,
            model=self.model,
            timings=timings,
            tool_calls=calls,
            done_reason="length" if response.done_reason == "length" else "stop",
            prompt_tokens=response.prompt_eval_count or 0,
            eval_tokens=response.eval_count or 0,
        )

    async def generate_stream(
        self, prompt: str, params: GenParams | Mapping[str, Any] | None = None
    ) -> AsyncIterator[str]:
        check_prompt(prompt)
        options = self._options(params)
        deadline = anyio.current_time() + self.timeout_gen
        stream = await self._bounded(
            "answer",
            self.timeout_gen,
            lambda: self.client.chat(
                model=self.model,
                messages=self._chat_messages(prompt),
                options=options,
                keep_alive=self.keep_alive,
                stream=True,
            ),
        )
        try:
            while True:
                # The deadline covers the whole answer; each wait gets what is left of it. The
                # cancel scope never spans a yield (that would break the consumer's scopes).
                remaining = max(deadline - anyio.current_time(), 0.0)
                try:
                    with anyio.fail_after(remaining):
                        part = await stream.__anext__()
                except StopAsyncIteration:
                    return
                except Exception as exc:  # mapped to SLMError
                    raise self.map_error(exc, "answer", self.timeout_gen) from None
                if part.message.content:
                    yield part.message.content
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def judge(self, prompt: str, response: str) -> Judgement:
        check_prompt(prompt)
        if not isinstance(response, str):
            raise SLMError(
                f"response must be text, got {type(response).__name__}", kind="bad_input"
            )
        messages = judge_messages(prompt, response)
        options = {"temperature": 0, "seed": JUDGE_SEED, "num_predict": JUDGE_NUM_PREDICT}
        logprobs = {"logprobs": True, "top_logprobs": TOP_LOGPROBS} if self.judge_logprobs else {}

        async def grade() -> Judgement:
            nonlocal messages
            problem = ""
            for attempt in (1, 2):
                reply = await self.client.chat(
                    model=self.model,
                    messages=messages,
                    format=JUDGE_SCHEMA,
                    options=options,
                    keep_alive=self.keep_alive,
                    stream=False,
                    **logprobs,
                )
                text = reply.message.content or ""
                try:
                    parsed = parse_judgement(text)
                except JudgeParseError as exc:
                    problem = str(exc)
                    log.info("judge reply unusable (attempt %d): %s", attempt, problem)
                    messages = retry_messages(messages, text, problem)
                    continue
                score = parsed.score
                if self.judge_logprobs:
                    expected = logprob_score(reply.logprobs)
                    if expected is not None:
                        score = expected
                    else:
                        log.debug("no usable logprobs from %s; using the parsed score", self.model)
                return Judgement(score=score, reason=parsed.reason, model=self.model)
            return Judgement(
                score=None,
                reason=f"judge output unusable after a retry: {problem}",
                model=self.model,
            )

        return await self._bounded("judge", self.timeout_judge, grade)


def _model_available(model: str, available: set[str]) -> bool:
    # Ollama lists "qwen2.5:latest" for a model pulled as "qwen2.5".
    return model in available or (":" not in model and f"{model}:latest" in available)


def _capabilities(shown: Any) -> tuple[str, ...]:
    """What the model can do, from ``/api/show``: its ``capabilities`` (Ollama >= 0.6), else
    whether its template renders tools (older servers)."""
    reported = list(getattr(shown, "capabilities", None) or [])
    tools = "tools" in reported or ".Tools" in (getattr(shown, "template", None) or "")
    return ("completion", "json", "tools") if tools else ("completion", "json")


def _timings(response: Any, started: float) -> dict[str, float]:
    timings: dict[str, float] = {"wall_ms": round((time.perf_counter() - started) * 1000, 1)}
    for source, target in (
        ("total_duration", "total_ms"),
        ("load_duration", "load_ms"),
        ("prompt_eval_duration", "prompt_eval_ms"),
        ("eval_duration", "eval_ms"),
    ):
        value = getattr(response, source, None)
        if value is not None:
            timings[target] = round(value / 1e6, 1)  # nanoseconds
    if getattr(response, "eval_count", None) is not None:
        timings["eval_count"] = float(response.eval_count)
    return timings
