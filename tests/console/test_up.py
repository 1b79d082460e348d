"""``rnet up`` in a real terminal (a pty): a bootstrap and providers as children, the console of
a leader; quitting (``q``, or SIGTERM from a supervisor) leaves no child process behind."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("stop", ["q", "sigterm"])
def test_rnet_up_leaves_no_child_process_after_quit(tmp_path: Path, stop: str) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        TERM="xterm-256color",
        RNET_CONFIG_DIR=str(tmp_path / "config"),
    )
    data = tmp_path / "up"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console.cli",
            "up",
            "--providers",
            "2",
            "--backend",
            "sim",
            "--data-dir",
            str(data),
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = bytearray()

    def drain() -> None:  # keep the pty from filling up (the console would block on write)
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    kids: list[int] = []
    try:
        wait_until(lambda: len(children_of(proc.pid)) >= 3, 60, "bootstrap + 2 providers")
        kids = children_of(proc.pid)
        console_log = data / "leader" / "console.log"
        wait_until(
            lambda: console_log.exists() and "ready after" in console_log.read_text(),
            60,
            "the leader node ready",
        )
        assert b"SIMULATED" in screen  # the header says the backend is simulated
        if stop == "q":
            os.write(master, b"q")
        else:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        wait_until(lambda: not any(alive(k) for k in kids), 10, "children gone")
        assert all(not alive(k) for k in kids)
        assert b"Traceback" not in screen
    finally:
        for pid in [proc.pid, *kids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        os.close(master)


def test_local_swarm_reports_a_crashed_child_and_kills_a_stubborn_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from node.localswarm import LocalSwarm

    swarm = LocalSwarm(tmp_path, dict(os.environ))
    crash = swarm.spawn("crash", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
    stubborn = swarm.spawn(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n",
        ],
    )
    swarm.watch()
    try:
        wait_until(
            lambda: any("crash exited with code 3" in r.getMessage() for r in caplog.records),
            30,
            "the crash reported",
        )
        assert swarm.tail("crash") == "boom"
        wait_until(lambda: swarm.tail("stubborn") == "ready", 30, "stubborn child up")
        assert "exited (3)" in swarm.describe() and "running" in swarm.describe()
        started = time.monotonic()
        swarm.stop(timeout=0.5)
        assert stubborn.process is not None and stubborn.process.returncode == -signal.SIGKILL
        assert time.monotonic() - started < 10
        assert crash.process is not None and crash.process.returncode == 3
    finally:
        for child in swarm.children:
            if child.process and child.process.poll() is None:
                child.process.kill()
