"""The session commands of the interpreter: ``adv``, ``ack``, ``finalize``, ``pipe``,
``sessions``. Handlers run on asyncio and cross to the engine (trio) with ``runtime.call``."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from node.commands import CommandError, parse_int, usage_error
from node.sessions.live import SessionFailed
from node.sessions.options import DEFAULT_PROMPT
from node.sessions.ports import CommandRegistry
from node.sessions.views import format_result
from protocol.identity import short_id

if TYPE_CHECKING:
    from node.sessions.engine import SessionEngine

# (name, usage, help)
SESSION_COMMANDS = (
    ("sessions", "sessions", "list this node's sessions (role, stage, progress)"),
    ("adv", "adv <topic> [prompt]", "advertise a session on swarm/mesh and wait for joins"),
    ("ack", "ack <topic> [prompt]", "assign executors/verifiers among those who joined"),
    ("finalize", "finalize <topic>", "tally what arrived and publish the result now"),
    (
        "pipe",
        "pipe <provider_count> [prompt]",
        "run a whole session: advertise, assign, collect, finalize",
    ),
)


def register_session_commands(interpreter: CommandRegistry, engine: SessionEngine) -> None:
    """``adv``, ``ack``, ``finalize``, ``pipe``, ``sessions`` in the shared interpreter.

    The interpreter calls each handler with the runtime it serves (unused here: the engine
    holds it) and the command's arguments.
    """

    async def adv(runtime: object, args: list[str]) -> str:
        usage = "adv <topic> [prompt]"
        if not args:
            raise usage_error(usage, "a topic (the session's task id) is needed")
        task, prompt = args[0], " ".join(args[1:]).strip() or DEFAULT_PROMPT
        start = functools.partial(
            engine.start_leader, task, prompt, options=engine.options.manual, auto_finalize=False
        )
        await engine.runtime.call(start)
        return f"advertised {task}: {prompt!r} (ack {task} once peers joined)"

    async def ack(runtime: object, args: list[str]) -> str:
        if not args:
            raise usage_error("ack <topic> [prompt]")
        return await engine.runtime.call(engine.ack, args[0], " ".join(args[1:]).strip())

    async def finalize(runtime: object, args: list[str]) -> str:
        if len(args) != 1:
            raise usage_error("finalize <topic>")
        return await engine.runtime.call(engine.finalize, args[0])

    async def pipe(runtime: object, args: list[str]) -> str:
        usage = "pipe <provider_count> [prompt]"
        if not args:
            raise usage_error(usage)
        n = parse_int(args[0], "provider_count", usage, lo=2, hi=64)
        prompt = " ".join(args[1:]).strip() or DEFAULT_PROMPT
        try:
            evt = await engine.run_pipe(prompt, n, timeout_s=engine.options.total_s())
        except SessionFailed as exc:
            raise CommandError(str(exc)) from None
        return format_result(evt)

    async def sessions(runtime: object, args: list[str]) -> str:
        if args:
            raise usage_error("sessions")
        if not engine.sessions:
            return "no sessions on this node"
        lines = []
        for task, live in engine.sessions.items():
            m = live.machine
            lines.append(
                f"{task:<24} {m.role!s:<9} {m.stage!s:<9} leader {short_id(m.leader)}"
                f"  joined {len(m.joined)}  responses {len(m.responses)}/{len(m.executors)}"
            )
        return "\n".join(lines)

    handlers = {"sessions": sessions, "adv": adv, "ack": ack, "finalize": finalize, "pipe": pipe}
    for name, usage, help_text in SESSION_COMMANDS:
        interpreter.register(name, usage, help_text, handlers[name])
