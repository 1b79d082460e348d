"""Tool definitions shared by the tests that send tools through the gateway, the swarm and
the backends, so every layer is checked against the same function spec."""

from __future__ import annotations

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
