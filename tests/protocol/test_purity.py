"""The protocol core is sans-IO: importing it loads no event loop, network or UI library."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_protocol_imports_no_io_frameworks() -> None:
    code = (
        "import sys\n"
        "import importlib, pkgutil, protocol\n"
        "for mod in pkgutil.iter_modules(protocol.__path__):\n"
        "    importlib.import_module('protocol.' + mod.name)\n"
        "print(len(sys.modules), file=sys.stderr)\n"
        "heavy = [m for m in ('trio', 'libp2p', 'textual', 'asyncio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
