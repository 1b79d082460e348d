"""Request failures and their body in each API's own shape (Ollama or OpenAI)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ApiError(Exception):
    """A request failure with its HTTP status; rendered in the shape of the API that was called."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}  # e.g. Retry-After on a 503 "busy"


_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    503: "service_unavailable",
}


def error_body(openai: bool, status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """``{"error": "..."}`` for Ollama; ``{"error": {"message", "type", "param", "code"}}`` for OpenAI."""
    if openai:
        return {
            "error": {
                "message": message,
                "type": _OPENAI_ERROR_TYPES.get(status, "server_error"),
                "param": None,
                "code": code,
            }
        }
    return {"error": message}


def is_openai(request: web.Request) -> bool:
    return request.path.startswith("/v1/") or request.path == "/v1"


def too_large(limit: int) -> str:
    return f"request body too large (limit {limit} bytes)"
