"""Cross-origin requests, as Ollama answers them: local origins by default, more by setting.

Ollama allows ``http(s)://localhost``, ``127.0.0.1`` and ``0.0.0.0`` on any port and the
``app://``, ``file://``, ``tauri://``, ``vscode-webview://`` and ``vscode-file://`` schemes, plus
what ``OLLAMA_ORIGINS`` adds (comma-separated, ``*`` wildcards). We do the same, with ``[::1]``,
and take extra origins from ``--origins`` / ``RNET_ORIGINS`` / ``OLLAMA_ORIGINS``
(``node.gateway_settings.origins_from``). A preflight ``OPTIONS`` from an allowed
origin gets 204 with the allowed methods and headers; a request from any other origin gets 403
(browsers would block the reply anyway; refusing early also keeps web pages from driving the
swarm through a user's browser). Requests without ``Origin`` (every non-browser client) pass.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from aiohttp import web

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "[::1]")
DEFAULT_ORIGINS: tuple[str, ...] = (
    *(f"{scheme}://{host}{port}" for host in _LOCAL_HOSTS for scheme in ("http", "https")
      for port in ("", ":*")),
    "app://*",
    "file://*",
    "tauri://*",
    "vscode-webview://*",
    "vscode-file://*",
)  # fmt: skip
ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
ALLOW_HEADERS = (
    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Organization, "
    "OpenAI-Project, X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-OS, "
    "X-Stainless-Arch, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Retry-Count"
)
MAX_AGE_S = 12 * 3600


def origin_allowed(origin: str, extra: Iterable[str] = ()) -> bool:
    """Whether a browser page at ``origin`` may call the gateway (``*`` allows everyone)."""
    origin = origin.strip().lower()
    return any(fnmatch.fnmatchcase(origin, p.lower()) for p in (*DEFAULT_ORIGINS, *extra))


def preflight(request: web.Request, extra: Iterable[str]) -> web.Response:
    """The answer to ``OPTIONS`` (a CORS preflight, or a plain probe without ``Origin``)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return web.Response(status=204, headers={"Allow": ALLOW_METHODS})
    if not origin_allowed(origin, extra):
        return web.json_response({"error": f"origin {origin!r} is not allowed"}, status=403)
    asked = request.headers.get("Access-Control-Request-Headers")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": asked or ALLOW_HEADERS,
            "Access-Control-Max-Age": str(MAX_AGE_S),
            "Vary": "Origin",
        },
    )


def add_cors_headers(
    request: web.Request, response: web.StreamResponse, extra: Iterable[str]
) -> None:
    """On every response (streamed ones too, before their headers go out)."""
    origin = request.headers.get("Origin")
    if "Access-Control-Allow-Origin" in response.headers:
        return  # a preflight answer, complete already
    if origin and origin_allowed(origin, extra):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "X-Rnet-Ignored"
        response.headers.add("Vary", "Origin")
