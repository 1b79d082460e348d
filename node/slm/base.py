"""The backend interface every SLM (Ollama or simulated) implements, and its value types.

A backend answers prompts (`generate`, `generate_stream`) and grades answers (`judge`). Every call is
async, cancellable and bounded by the backend's timeouts; failures of the model server surface as
:class:`SLMError`, whose ``str()`` is one line a user can act on (never a traceback). A judge whose
output cannot be used yields ``Judgement(score=None)`` ("missing"), never 0.00.

This module imports nothing heavy: it is loaded by ``rnet --help`` through ``node.slm.config``.
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

log = logging.getLogger(__name__)

BackendKind = Literal["ollama", "sim"]

# Lowest and highest score a judge may give. 1.0 is reserved: no answer is beyond doubt.
SCORE_MIN = 0.0
SCORE_MAX = 0.99

ErrorKind = Literal[
    "unreachable",  # nothing answers at the configured host
    "model_missing",  # the server runs but the model is not pulled
    "timeout",  # the server did not answer within the bound
    "server_error",  # the server answered with an error
    "bad_response",  # the server's reply could not be understood
    "bad_input",  # our caller passed something unusable (empty prompt, bad params)
    "config",  # bad flag or environment value
]


class SLMError(Exception):
    """A model call failed. ``str(err)`` is a one-line message meant for the user.

    ``kind`` is a short machine-readable code (see :data:`ErrorKind`) for callers that react
    differently to, say, a timeout and a missing model.
    """

    def __init__(self, message: str, *, kind: ErrorKind = "server_error") -> None:
        # One line, always: these go straight into the console's log pane and headless output.
        self.message = " ".join(message.split())
        self.kind: ErrorKind = kind
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class GenParams:
    """Sampling options for one generation. ``None`` means "the server's default".

    Built from the leader's advertised params with :meth:`from_mapping`, which validates types and
    ranges (the mapping came off the wire) and ignores keys it does not know, so a newer leader
    can add options without breaking older nodes.
    """

    temperature: float | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] | None = None

    KNOWN: ClassVar[tuple[str, ...]] = (
        "temperature",
        "seed",
        "num_predict",
        "top_p",
        "top_k",
        "stop",
    )

    def __post_init__(self) -> None:
        if self.stop is not None:
            if not isinstance(self.stop, list | tuple) or not all(
                isinstance(s, str) and s for s in self.stop
            ):
                raise ValueError("stop must be a list of non-empty strings")
            object.__setattr__(self, "stop", tuple(self.stop))
        _check_float("temperature", self.temperature, 0.0, 5.0)
        _check_int("seed", self.seed, -(2**63), 2**63 - 1)
        _check_int("num_predict", self.num_predict, 1, 1_000_000)
        _check_float("top_p", self.top_p, 0.0, 1.0)
        _check_int("top_k", self.top_k, 1, 100_000)

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any] | None) -> GenParams:
        """Validate a params mapping. Raises :class:`SLMError` (kind ``bad_input``) if unusable."""
        if params is None:
            return cls()
        if not isinstance(params, Mapping):
            raise SLMError(
                f"generation params must be a mapping, got {type(params).__name__}",
                kind="bad_input",
            )
        unknown = sorted(str(k) for k in params if k not in cls.KNOWN)
        if unknown:
            log.debug("ignoring unknown generation params: %s", ", ".join(unknown))
        try:
            return cls(**{k: params[k] for k in cls.KNOWN if params.get(k) is not None})
        except (TypeError, ValueError) as exc:
            raise SLMError(f"bad generation params: {exc}", kind="bad_input") from None

    def to_options(self) -> dict[str, Any]:
        """The subset that is set, as an Ollama ``options`` dict."""
        out = {k: getattr(self, k) for k in self.KNOWN if getattr(self, k) is not None}
        if "stop" in out:
            out["stop"] = list(out["stop"])
        return out


def _check_float(name: str, value: object, lo: float, hi: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be within [{lo}, {hi}], got {value!r}")


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be within [{lo}, {hi}], got {value!r}")


def coerce_params(params: GenParams | Mapping[str, Any] | None) -> GenParams:
    """Accept either a :class:`GenParams` or a wire-level mapping."""
    return params if isinstance(params, GenParams) else GenParams.from_mapping(params)


@dataclass(frozen=True, slots=True)
class Generation:
    """One answer. ``timings`` holds wall-clock and (for Ollama) server-reported figures:
    ``wall_ms`` always; ``total_ms``, ``load_ms``, ``prompt_eval_ms``, ``eval_ms``,
    ``eval_count`` when the server reports them.

    ``tool_calls`` (``{"name", "arguments"}`` each) when the model called tools;
    ``done_reason`` ``"length"`` when ``num_predict`` cut the text; token counts as the model
    reported them (0: not reported).
    """

    text: str
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    tool_calls: tuple[dict[str, Any], ...] = ()
    done_reason: str = "stop"
    prompt_tokens: int = 0
    eval_tokens: int = 0

    def response_fields(self) -> dict[str, Any]:
        """The protocol ``Response`` generation fields (see ``ParticipantSession.generation_done``)."""
        return {
            "tool_calls": self.tool_calls,
            "done_reason": self.done_reason,
            "prompt_tokens": self.prompt_tokens,
            "eval_tokens": self.eval_tokens,
            "prompt_ms": int(self.timings.get("prompt_eval_ms", 0)),
            "eval_ms": int(self.timings.get("eval_ms", 0)),
        }

    @property
    def simulated(self) -> bool:
        return is_simulated_model(self.model)


@dataclass(frozen=True, slots=True)
class Judgement:
    """One grade of one answer. ``score`` is in [0.00, 0.99] with two decimals, or ``None`` when the
    judge's output could not be used (a missing score, never a zero). ``reason`` is short (at most
    :data:`REASON_MAX` characters) and says why, including why a score is missing."""

    score: float | None
    reason: str
    model: str

    def __post_init__(self) -> None:
        if self.score is not None and not SCORE_MIN <= self.score <= SCORE_MAX:
            raise ValueError(f"score out of range: {self.score!r}")

    @property
    def missing(self) -> bool:
        return self.score is None

    @property
    def simulated(self) -> bool:
        return is_simulated_model(self.model)


REASON_MAX = 200


def is_simulated_model(model: str) -> bool:
    """Simulated backends name their model ``sim/<profile>``."""
    return model.startswith("sim/")


# Every simulated answer starts with this label: "[simulated sim/honest@alice] ...". It names the
# node, which the simulated adversary relies on (see node.slm.sim); real judges never see it.
SIM_LABEL_RE = re.compile(r"^\[simulated (sim/[a-z]+)@([^\]]*)\]\s*")


def sim_label(model: str, node_name: str) -> str:
    return f"[simulated {model}@{node_name}]"


def strip_sim_label(text: str) -> str:
    """``text`` without a leading simulation label (which would tell a judge who answered)."""
    return SIM_LABEL_RE.sub("", text, count=1)


class Backend(ABC):
    """A node's language model. Implementations: ``OllamaBackend`` and ``SimBackend``.

    Attributes: ``name`` (the node this backend belongs to), ``model`` (what peers see in ``join``),
    ``backend`` (``"ollama"`` or ``"sim"``), ``simulated``.

    All coroutines are cancellable and bounded by ``timeout_gen`` / ``timeout_judge`` seconds; they
    work under asyncio and trio alike (they use anyio primitives).
    """

    backend: ClassVar[BackendKind]
    simulated: ClassVar[bool]
    # What this model can do beyond plain text (``protocol.generation.CAPABILITIES``); announced
    # in presence and join, so leaders only get providers that can serve their request.
    capabilities: tuple[str, ...] = ("completion", "json")

    def __init__(self, *, name: str, model: str, timeout_gen: float, timeout_judge: float) -> None:
        if timeout_gen <= 0 or timeout_judge <= 0:
            raise SLMError("timeouts must be positive", kind="config")
        self.name = name
        self.model = model
        self.timeout_gen = timeout_gen
        self.timeout_judge = timeout_judge

    @abstractmethod
    async def check(self) -> None:
        """Start-up check. Raises :class:`SLMError` with a one-line hint when unusable."""

    @abstractmethod
    async def generate(
        self,
        prompt: str,
        params: GenParams | Mapping[str, Any] | None = None,
        *,
        format: str | Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
        tool_choice: str = "auto",
    ) -> Generation:
        """Answer ``prompt``: plain text, JSON when ``format`` is ``"json"`` or a schema, or tool
        calls when ``tools`` are offered (``tool_choice``: ``"auto"``, ``"required"`` or a
        tool's name). Raises :class:`SLMError`."""

    @abstractmethod
    def generate_stream(
        self, prompt: str, params: GenParams | Mapping[str, Any] | None = None
    ) -> AsyncIterator[str]:
        """Answer ``prompt`` as text chunks (an async generator: close it if you stop early,
        e.g. with ``contextlib.aclosing``). Raises :class:`SLMError` while iterating."""

    @abstractmethod
    async def judge(self, prompt: str, response: str) -> Judgement:
        """Grade ``response`` to ``prompt``. Unusable judge output gives ``score=None``; a failing
        server raises :class:`SLMError`."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections. Safe to call twice."""

    def describe(self) -> str:
        """One line for logs and the console's peer pane."""
        return f"{self.backend} {self.model}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} model={self.model!r}>"


def check_prompt(prompt: object) -> str:
    """Validate a prompt handed to a backend: a non-blank string."""
    if not isinstance(prompt, str):
        raise SLMError(f"prompt must be text, got {type(prompt).__name__}", kind="bad_input")
    if not prompt.strip():
        raise SLMError("prompt is empty", kind="bad_input")
    return prompt


async def probe(backend: Backend) -> SLMError | None:
    """Whether ``backend`` can answer (``check()``): None, or the error that says why not. A
    simulated backend always can."""
    if backend.simulated:
        return None
    try:
        await backend.check()
    except SLMError as exc:
        return exc
    return None
