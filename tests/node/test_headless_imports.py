"""The headless path never loads the console, and command modules stay light for --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_code(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_headless_runtime_never_imports_textual() -> None:
    out = run_code(
        "import sys\n"
        "import node.runtime, node.headless, node.net.host, node.assemble, node.cli\n"
        "import argparse\n"
        "from node.config import add_node_flags, resolve_node_config\n"
        "p = argparse.ArgumentParser(); add_node_flags(p)\n"
        "print('textual' in sys.modules, 'libp2p' in sys.modules)\n"
    )
    assert out == "False True"


def test_cmd_modules_import_light() -> None:
    out = run_code(
        "import sys\n"
        "import node.cmd_node, node.cmd_bootstrap, node.keys, node.config\n"
        "print(sorted(m for m in ('textual', 'libp2p', 'trio') if m in sys.modules))\n"
    )
    assert out == "[]"
