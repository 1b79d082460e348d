"""When the node's network side dies by itself, or never starts, the console says so and exits
non-zero.

The network side is the node's trio run (the libp2p host, on the App's asyncio loop). If it ends
without being asked (the host stopped under the node, an error escaped a trio task), or the node
could not start (its port is taken), the node sends and receives nothing, while the panes would
still look alive. So, like the headless node (``node.headless``), the console ends the process
with exit code 1 and the cause, and a supervisor restarts it. :class:`NetworkWatch` is the App
layer that does it (:meth:`~NetworkWatch.network_lost`, :meth:`~NetworkWatch.start_failed`):

- the cause goes to the log pane, a notification, the error banner and the title;
- a command that needs the network is refused and says why (``help``, and under ``rnet up`` the
  ``children``/``logs`` commands, still work: they do not use the network); the session keys are
  disabled;
- the App exits with code 1 after a visible countdown (``q`` exits at once), and
  :func:`exit_code` puts the cause on stderr once the terminal is back.

A countdown rather than "press a key": a console kept up by a supervisor (systemd on a tty, a
restart loop in tmux) is often watched by nobody, and waiting for a key would leave exactly the
process issue 13 rules out -- one that looks alive and serves nothing -- until someone comes by.
The countdown is long enough for a watching operator to read the cause, which also stays on
stderr and in ``console.log``.
"""

from __future__ import annotations

import errno
import math
import time
from typing import TYPE_CHECKING, TextIO

from console.keys import KeyActions
from node.errors import NodeError

if TYPE_CHECKING:
    from textual.timer import Timer

#: Seconds between "the network side stopped" and the console's exit (code 1).
NETWORK_EXIT_DELAY_S = 10.0
#: Key actions that need the network: disabled (greyed in the footer) once it is gone.
NETWORK_ACTIONS = frozenset({"advertise", "ack", "finalize", "pipe", "slm"})


def network_stopped(cause: str) -> str:
    """The one line that says it (the same words as the headless node's)."""
    return f"the node's network side stopped: {cause}"


def start_cause(error: BaseException) -> str:
    """Why the node could not start, in one line: the node's own errors are written for a user
    (said as they are), anything else keeps its type."""
    if isinstance(error, NodeError) and str(error):
        return str(error)
    return f"{type(error).__name__}: {error}"


def start_hint(error: BaseException) -> str:
    """What to change when the node could not listen (from the OS error under ``error``)."""
    cause = error.__cause__ if isinstance(error.__cause__, OSError) else error
    code = cause.errno if isinstance(cause, OSError) else None
    if code == errno.EADDRINUSE:
        return "Another process holds this port: stop it, or start the node with another --port."
    if code == errno.EADDRNOTAVAIL:
        return "--host must be an address of this machine (0.0.0.0: all of them)."
    return ""


class NetworkWatch(KeyActions):
    """The App layer that follows the node's network side (see the module docstring)."""

    #: Why the network side stopped by itself (or never started); None while it runs (or was
    #: stopped by us).
    network_down: str | None = None
    #: The one line that says it (log, stderr): "the node's network side stopped: <cause>" or
    #: "the node could not start: <cause>".
    down_line = ""
    _down_banner = ""
    network_exit_delay_s: float = NETWORK_EXIT_DELAY_S
    _exit_at = 0.0
    _countdown: Timer | None = None

    # Provided by RnetConsole.
    def _show_banner(self, text: str, *, error: bool = False) -> None:
        raise NotImplementedError

    def _update_title(self) -> None:
        raise NotImplementedError

    @property
    def exit_status(self) -> int:
        """The process's exit code if the console closed now: 1 once the network side died (or
        never started)."""
        return 0 if self.network_down is None else 1

    def follow_network(self) -> None:
        """Start waiting for the network side to stop by itself (once the node has started)."""
        self.run_worker(self._wait_network_lost(), name="network watch", exit_on_error=False)

    async def _wait_network_lost(self) -> None:
        cause = await self.link.network_lost()
        if cause is not None and self.is_running:
            self.network_lost(cause)

    def network_lost(self, cause: str) -> None:
        """Say that the network side stopped, refuse what needs it, and start the countdown."""
        self._go_down(
            cause,
            network_stopped(cause),
            "The node's network side stopped",
            f"The node's network side stopped: {cause}. This node sends and receives nothing "
            "any more",
        )

    def start_failed(self, error: BaseException) -> None:
        """The node could not start: the same as a lost network side (it never had one)."""
        cause = start_cause(error)
        hint = start_hint(error)
        self._go_down(
            cause,
            f"the node could not start: {cause}",
            "The node could not start",
            f"The node could not start: {cause}. {hint + ' ' if hint else ''}It runs nothing",
        )

    def _go_down(self, cause: str, line: str, title: str, banner: str) -> None:
        """Say ``line`` everywhere, refuse what needs the network, and count down to exit 1."""
        if self.network_down is not None or not self.is_running:
            return  # said already, or the console is closing anyway (q, SIGTERM)
        self.network_down, self.down_line, self._down_banner = cause, line, banner
        delay = self.network_exit_delay_s
        self.state.note(line, "error", "node")
        self._request_refresh({"log"})
        self.notify(
            f"{cause}\nThe console exits with code 1 in {math.ceil(delay)} s (q: now).",
            title=title,
            severity="error",
            timeout=max(delay, 1.0),
            markup=False,  # the cause is an error text, not markup
        )
        self._exit_at = time.monotonic() + delay
        self.set_timer(delay, self.exit_now)
        self._countdown = self.set_interval(min(1.0, max(delay, 0.05)), self._show_countdown)
        self._show_countdown()
        self._update_title()
        self.refresh_bindings()  # the footer greys the keys that need the network

    def _show_countdown(self) -> None:
        left = max(0, math.ceil(self._exit_at - time.monotonic()))
        self._show_banner(
            f"{self._down_banner}: exiting with code 1 in {left} s (q: now).", error=True
        )

    def refuses(self, line: str) -> bool:
        """True, and the log says why, when ``line`` needs the network and it is gone."""
        if self.network_down is None:
            return False
        words = line.split(maxsplit=1)
        if words and words[0] in self.link.offline_commands():
            return False
        left = max(0, math.ceil(self._exit_at - time.monotonic()))
        self.state.note(
            f"refused `{line}`: {self.down_line}; the console exits with code 1 in {left} s",
            "error",
        )
        self._request_refresh({"log"})
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.network_down is not None and action in NETWORK_ACTIONS:
            return None  # shown disabled: the banner says why
        return super().check_action(action, parameters)

    def exit_now(self) -> None:
        """Close the console (and the node) with :attr:`exit_status` (``q``, SIGTERM, the end
        of the countdown)."""
        if self._countdown is not None:
            self._countdown.stop()
        code = self.exit_status
        self.exit(code, return_code=code)

    async def action_quit(self) -> None:
        self.exit_now()


def exit_code(app: NetworkWatch, role: str, stderr: TextIO) -> int:
    """The process's exit code once the App closed; a dead (or never started) network side is
    also one line on ``stderr`` (after the TUI, so a supervisor's log shows it), as the headless
    node prints it."""
    if app.network_down is not None:
        print(f"rnet {role}: {app.down_line}", file=stderr, flush=True)
        return 1
    return int(app.return_value or app.return_code or 0)
