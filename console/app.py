"""The rnet console: a Textual App over one node (``make_app`` builds it;
``console.runtime_link.run_console`` runs it over a real node).

The App owns the node link (toolong's model): it subscribes and starts it on mount and closes it
on unmount. Runtime events land in an inbox; a coalescing ``EventsArrived`` wake-up folds them
into ``ConsoleState`` and a throttled refresh assigns snapshots to reactives whose watchers fan
them out to the panes (posting's model). Panes post Messages up; every action that touches the
node runs an interpreter command line through the link — keys (``console.keys``), modals and
the command input share that one path. If the node cannot start, or its network side dies by
itself, the App says so and exits with code 1 (``console.lifeline``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeAlias

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from console.lifeline import NETWORK_EXIT_DELAY_S, NetworkWatch
from console.messages import CommandSubmitted, EventsArrived, SessionSelected, ShowText
from console.modals import TextModal
from console.panes import CommandInput, LogPane, MeshPane, PeersPane, ScoresPane, SessionsPane
from console.settings import Settings
from console.state import ConsoleState, Peer, SessionView, short_id
from themes import DEFAULT_THEME, TCSS_PATH, THEMES

if TYPE_CHECKING:
    from textual.timer import Timer

    from console.link import NodeLink
    from node import events as ev

#: What reaches the console: a node event, or its ``to_dict()`` form (scripted links, tests).
NodeEvent: TypeAlias = "ev.Event | Mapping[str, object]"

logger = logging.getLogger(__name__)

#: Minimum time between two repaints of the panes: bursts are folded, then drawn once.
REFRESH_INTERVAL_S = 1 / 30


class RnetConsole(NetworkWatch):
    """Main screen: peers, mesh, sessions, scores, log, command input."""

    CSS_PATH = TCSS_PATH
    TITLE = "rnet"
    ENABLE_COMMAND_PALETTE = False
    # Short terminals (80x24) get fixed, smaller log and sessions panes (see rnet.tcss).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    peers: reactive[tuple[Peer, ...]] = reactive((), init=False, always_update=True)
    """Snapshot of the peers this node sees."""
    sessions: reactive[tuple[SessionView, ...]] = reactive((), init=False, always_update=True)
    """Snapshot of every session seen (own and others'), oldest first."""
    selected_task: reactive[str | None] = reactive(None, init=False)
    """The session the scores pane shows and `k`/`f`/`w` act on."""
    simulated: reactive[bool] = reactive(False, init=False)
    """True when this node's model is the simulated backend (the header says so)."""

    def __init__(
        self,
        link: NodeLink,
        *,
        role: str = "provider",
        backend: str = "",
        simulated: bool = False,
        banner: str | None = None,
        settings: Settings | None = None,
        default_providers: int = 3,
        save_settings: bool = True,
        handle_signals: bool = False,
        network_exit_delay_s: float = NETWORK_EXIT_DELAY_S,
    ) -> None:
        super().__init__()
        self.network_exit_delay_s = network_exit_delay_s
        self.link = link
        self.role = role
        self.backend_label = backend
        self.banner_text = banner
        self.settings = settings if settings is not None else Settings.load()
        self.save_settings = save_settings
        self.handle_signals = handle_signals
        self._loop: asyncio.AbstractEventLoop | None = None
        self.default_providers = default_providers
        self.state = ConsoleState(role=role)
        self._inbox: list[NodeEvent] = []
        self._wake_pending = False
        self._heap_frozen = False
        self._dirty: set[str] = set()
        self._refresh_timer: Timer | None = None
        self._last_refresh = 0.0
        self._selection_pinned = False
        self._loop_thread = threading.get_ident()
        #: Counters for benchmarks and tests: events folded, wake-ups handled, pane repaints.
        self.stats = {"events": 0, "batches": 0, "repaints": 0}
        #: ``time.monotonic()`` of the last pane repaint (event -> screen latency in benchmarks).
        self.last_repaint = 0.0
        self.set_reactive(RnetConsole.simulated, simulated)
        if self.settings.problem:
            self.state.note(self.settings.problem, "warning")

    # -- typed accessors ---------------------------------------------------------------------

    @property
    def peers_pane(self) -> PeersPane:
        return self.query_one(PeersPane)

    @property
    def mesh_pane(self) -> MeshPane:
        return self.query_one(MeshPane)

    @property
    def sessions_pane(self) -> SessionsPane:
        return self.query_one(SessionsPane)

    @property
    def scores_pane(self) -> ScoresPane:
        return self.query_one(ScoresPane)

    @property
    def log_pane(self) -> LogPane:
        return self.query_one(LogPane)

    @property
    def command_input(self) -> CommandInput:
        return self.query_one(CommandInput)

    @property
    def selected_session(self) -> SessionView | None:
        if self.selected_task is None:
            return None
        return self.state.sessions.get(self.selected_task)

    # -- layout and lifecycle ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Static(Text(self.banner_text or ""), id="banner")
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield PeersPane(id="peers")
                yield MeshPane(id="mesh")
            with Vertical(id="right"):
                yield SessionsPane(id="sessions")
                yield ScoresPane(id="scores")
        yield LogPane(id="log")
        placeholder = (
            "command (help, peers, bootmesh, topics…) — Esc leaves"
            if self.role == "bootstrap"
            else "command (help, pipe 3 <prompt>, adv <topic> <prompt>…) — Esc leaves"
        )
        yield CommandInput(self.link.command_names(), placeholder, id="command")
        yield Footer()

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        wanted = self.settings.theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.state.note(f"unknown theme {wanted!r} in config; using {DEFAULT_THEME}", "warning")
            wanted = DEFAULT_THEME
        self.theme = wanted
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        self.query_one("#banner").display = bool(self.banner_text)
        self.set_class(self.role == "bootstrap", "-bootstrap")
        self._update_title()
        self.sessions_pane.focus()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self.handle_signals:
            # SIGTERM/SIGHUP (a supervisor, a closed terminal) quit like `q`: the node closes.
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._loop.add_signal_handler(sig, self.exit_now)
        self.link.subscribe(self._on_node_event)
        self.run_worker(self._start_node(), name="node-start", exit_on_error=False)
        self._request_refresh({"log"})

    async def _start_node(self) -> None:
        self.state.note("starting node…")
        self._request_refresh({"log"})
        try:
            await self.link.start()
        except Exception as exc:  # a node that cannot start ends the console too (exit 1)
            self.start_failed(exc)
            return
        self.follow_network()
        self.command_input.set_command_names(self.link.command_names())
        self.call_after_refresh(self._freeze_heap)
        preflight = getattr(self.link, "preflight", None)
        if preflight is not None:
            problem = await preflight()
            if problem:
                self._show_banner(problem, error=True)

    def _freeze_heap(self) -> None:
        """Take what start-up built (Textual, the node, libp2p) out of the garbage collector's
        full passes: those objects live as long as the process, and rescanning them made every
        full collection a 25-60 ms stall of the UI (longer on a loaded machine).

        No collection first: that would itself stall the first frames (~70 ms with libp2p
        loaded); the few thousand objects start-up left unreachable are kept, once.
        """
        if self.is_running and not self._heap_frozen:
            self._heap_frozen = True
            gc.freeze()

    async def on_unmount(self) -> None:
        if self._heap_frozen:
            gc.unfreeze()  # back to normal collection (tests run many apps in one process)
        if self.handle_signals and self._loop is not None:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._loop.remove_signal_handler(sig)
        try:
            await self.link.aclose()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled: let it through
            # The node's own close was cancelled on its side (trio): nothing left to wait for.
            logger.warning("closing the node was cancelled inside the runtime")
        except Exception:  # the UI is gone: the log file is the only place left to say it
            logger.exception("closing the node failed")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker failure surfaces here, once, as a log line the user can see."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            what = "node start" if event.worker.name == "node-start" else event.worker.name
            self.state.note(f"{what} failed: {error}", "error")
            self._request_refresh({"log"})

    # -- events from the node ------------------------------------------------------------------

    def _on_node_event(self, event: NodeEvent) -> None:
        """Runtime callback: queue and wake the UI (one pending wake-up at a time)."""
        if threading.get_ident() != self._loop_thread:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._on_node_event, event)
            return
        self._inbox.append(event)
        if not self._wake_pending:
            # One wake-up per batch: the events that follow it join the same inbox.
            self._wake_pending = self.post_message(EventsArrived())

    def feed(self, *events: NodeEvent) -> None:
        """Push events as if the node emitted them (tests, benchmarks, the log handler)."""
        for event in events:
            self._on_node_event(event)

    def on_events_arrived(self, _: EventsArrived) -> None:
        self._wake_pending = False
        batch, self._inbox = self._inbox, []
        self.stats["batches"] += 1
        self.stats["events"] += len(batch)
        self._request_refresh(self.state.apply_all(batch))

    def _request_refresh(self, dirty: set[str]) -> None:
        self._dirty |= dirty
        if self._refresh_timer is not None or not self._dirty:
            return
        wait = self._last_refresh + REFRESH_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._refresh_panes()
        else:
            self._refresh_timer = self.set_timer(wait, self._refresh_panes)

    def _refresh_panes(self) -> None:
        self._refresh_timer = None
        if not self.is_running:
            return  # shutting down: the panes may already be gone
        self._last_refresh = time.monotonic()
        self.stats["repaints"] += 1
        self.last_repaint = self._last_refresh
        dirty, self._dirty = self._dirty, set()
        if "peers" in dirty:
            self.peers = self.state.peers_snapshot()
        if "mesh" in dirty:
            self.mesh_pane.local = dict(self.state.mesh)
            self.mesh_pane.bootmesh = dict(self.state.bootmesh)
        if "sessions" in dirty:
            self.sessions = self.state.sessions_snapshot()
        if "log" in dirty:
            self.log_pane.add_entries(self.state.take_new_log())
        if "slm" in dirty:
            live = self.state.slm_live.replace("\n", " ")
            self.log_pane.border_subtitle = f"slm: …{live[-60:]}" if live else ""
        if dirty & {"identity", "peers"}:
            self._update_title()

    # -- reactive fan-out ------------------------------------------------------------------------

    def watch_peers(self, peers: tuple[Peer, ...]) -> None:
        self.peers_pane.peers = peers

    def watch_sessions(self, sessions: tuple[SessionView, ...]) -> None:
        if sessions and (not self._selection_pinned or self.selected_task is None):
            self.selected_task = sessions[-1].task  # follow the newest unless the user chose
        self.sessions_pane.sessions = sessions
        self.scores_pane.session = self.selected_session

    def watch_selected_task(self, task: str | None) -> None:
        self.sessions_pane.selected = task
        self.scores_pane.session = self.selected_session

    def watch_simulated(self) -> None:
        self._update_title()

    def _update_title(self) -> None:
        state = self.state
        who = state.name or self.role
        self.title = f"rnet · {who} {short_id(state.peer_id)}" if state.peer_id else f"rnet · {who}"
        parts = ["NETWORK DOWN"] if self.network_down is not None else []
        if self.simulated:  # first, so a narrow header still says it
            parts.append(f"SIMULATED {self.backend_label or 'sim'}")
        elif self.backend_label:
            parts.append(self.backend_label)
        parts.append(state.role or self.role)
        connected = sum(1 for p in state.peers.values() if p.state == "connected")
        parts.append(f"{connected} peer{'' if connected == 1 else 's'}")
        if state.rejected:
            parts.append(f"{state.rejected} rejected")
        if state.gateway_queue is not None:
            running, waiting, capacity = state.gateway_queue
            parts.append(f"gateway {running}/{capacity} running, {waiting} queued")
        self.sub_title = " · ".join(parts)

    def _show_banner(self, text: str, *, error: bool = False) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(Text(text))
        banner.set_class(error, "-error")
        banner.display = True

    # -- messages from panes -------------------------------------------------------------------

    @on(SessionSelected)
    def _session_selected(self, message: SessionSelected) -> None:
        self._selection_pinned = True
        self.selected_task = message.task

    @on(ShowText)
    def _show_text(self, message: ShowText) -> None:
        self.push_screen(TextModal(message.title, message.text))

    @on(CommandSubmitted)
    def _command_submitted(self, message: CommandSubmitted) -> None:
        self.run_command(message.line)

    def run_command(self, line: str | None) -> None:
        """Echo ``line`` to the log and run it on the node (its output arrives as an event)."""
        if not line:
            return
        self.state.note(f"> {line}", "command", "you")
        self._request_refresh({"log"})
        if self.refuses(line):
            return
        self.run_worker(
            self.link.run_command(line),
            name=f"command `{line}`",
            group="commands",
            exit_on_error=False,
        )


def make_app(
    link: NodeLink,
    *,
    role: str = "provider",
    backend: str = "",
    simulated: bool = False,
    banner: str | None = None,
    settings: Settings | None = None,
    default_providers: int = 3,
    save_settings: bool = True,
    handle_signals: bool = False,
    network_exit_delay_s: float = NETWORK_EXIT_DELAY_S,
) -> RnetConsole:
    """Build the console for a node link (the CLI and the tests both come through here)."""
    return RnetConsole(
        link,
        role=role,
        backend=backend,
        simulated=simulated,
        banner=banner,
        settings=settings,
        default_providers=default_providers,
        save_settings=save_settings,
        handle_signals=handle_signals,
        network_exit_delay_s=network_exit_delay_s,
    )
