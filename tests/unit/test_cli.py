"""The ``rnet`` entry point (``console.cli``) and the headless ``python -m node``: help tells the
truth and stays light."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_rnet(*args: str, module: str = "console.cli") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_subcommands_and_exits_zero() -> None:
    proc = run_rnet("--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: rnet" in proc.stdout


def test_no_subcommand_prints_help_and_fails() -> None:
    proc = run_rnet()
    assert proc.returncode == 2
    assert "usage: rnet" in proc.stdout


def test_headless_cli_has_no_console_commands() -> None:
    proc = run_rnet("--help", module="node")
    assert proc.returncode == 0, proc.stderr
    assert "Headless" in proc.stdout and " up " not in proc.stdout
    assert " pipe " in proc.stdout and " serve " in proc.stdout


def test_cli_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from console.cli import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('textual', 'libp2p', 'trio', 'ollama', 'aiohttp') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
