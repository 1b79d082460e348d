"""The model settings' defaults and the Ollama host rule, shared by the flags and the backends."""

from __future__ import annotations

import urllib.parse

from node.slm.base import SLMError

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_MODEL = "qwen2.5:1.5b"
DEFAULT_BACKEND = "ollama"
DEFAULT_TIMEOUT_GEN = 120.0
DEFAULT_TIMEOUT_JUDGE = 60.0
BACKENDS = ("ollama", "sim")
SIM_PROFILES = ("honest", "noisy", "lazy", "adversarial", "faulty")


def normalise_host(host: str | None) -> str:
    """``OLLAMA_HOST`` as Ollama itself reads it: ``host``, ``host:port``, ``:port`` or a URL.
    No scheme -> ``http`` and port 11434; a scheme without port -> 80/443."""
    text = (host or "").strip()
    if not text:
        return DEFAULT_HOST
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest, port = "http", text, 11434
    elif scheme in ("http", "https"):
        port = 80 if scheme == "http" else 443
    else:
        raise SLMError(f"bad Ollama host {text!r}: scheme must be http or https", kind="config")
    try:
        split = urllib.parse.urlsplit(f"{scheme}://{rest}")
        hostname = split.hostname or "127.0.0.1"
        port = split.port or port
    except ValueError as exc:
        raise SLMError(f"bad Ollama host {text!r}: {exc}", kind="config") from None
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    path = split.path.strip("/")
    return f"{scheme}://{hostname}:{port}" + (f"/{path}" if path else "")
