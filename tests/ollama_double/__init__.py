"""A test double of Ollama's HTTP API (aiohttp), faithful enough for the official ``ollama`` client.

Endpoints: ``/api/chat`` and ``/api/generate`` (NDJSON streaming, or one JSON object with
``"stream": false``), ``/api/tags``, ``/api/show``, ``/api/version``, ``/api/pull``, ``/api/ps``.
It honours the gotchas in ARCHITECTURE §11: streaming is the default when ``stream`` is absent, no
blank lines between records, every chat chunk (the last too) carries ``message``, ``/api/show``
includes ``model_info``, ``/api/tags`` entries have ``model`` and ``name``, errors are
``{"error": ...}`` with the HTTP status (404 for an unknown model).

Three ways to run it:

* In a test's event loop (asyncio)::

      async with OllamaDouble(models=["qwen2.5:1.5b"]) as double:
          client = ollama.AsyncClient(host=double.url)

* In a background thread (for sync or trio tests)::

      with OllamaDouble(models=["m"]).in_thread() as double: ...

* As a process, so that provider *subprocesses* can point ``--ollama-host`` at it::

      python -m tests.ollama_double --port 0 --model qwen2.5:1.5b --model llama3.2:1b
      # prints "ollama-double listening on http://127.0.0.1:PORT", serves until SIGTERM

  or from a test: ``with spawn_double("--model", "m") as url: ...``.

Behaviour per model (:class:`ModelSpec`): a default answer (``{model}`` and ``{prompt}`` are
substituted), a default judge score, delays. Per request, scripted :class:`Reply` objects queue up
per (model, kind), kind ``"judge"`` for requests that carry ``format`` with a ``score`` property
(the judge's schema) or while judge replies are queued, ``"answer"`` otherwise; they are consumed in order, then the model's defaults apply. A reply can
set an HTTP error, a delay before the first byte, a delay between chunks, an error record after N
chunks (``error_after``), a dropped connection after N chunks (``drop_after``), logprobs and
``tool_calls``. Generation fields are honoured as Ollama does: ``options.num_predict`` cuts the
reply to that many tokens (``done_reason: "length"``), ``options.stop`` cuts at a stop sequence,
``format`` (``"json"`` or a schema) makes the default answer JSON that fits, ``tools`` make the
default answer a call of the best-matching tool, and a request with ``tools`` to a model whose
spec has ``tools=False`` gets Ollama's 400 "... does not support tools"; ``/api/show`` reports
``capabilities`` accordingly.
A process double is scripted over HTTP: ``POST /_double/script`` with
``{"model": ..., "kind": "answer"|"judge", "reply": {<Reply fields>}}``, ``POST /_double/models``
with ``{<ModelSpec fields>}``, ``GET /_double/requests``, ``POST /_double/reset``.
"""

from tests.ollama_double.process import build_from_args, main, spawn_double
from tests.ollama_double.server import OllamaDouble
from tests.ollama_double.spec import VERSION, ModelSpec, RecordedRequest, Reply

__all__ = [
    "VERSION",
    "ModelSpec",
    "OllamaDouble",
    "RecordedRequest",
    "Reply",
    "build_from_args",
    "main",
    "spawn_double",
]
