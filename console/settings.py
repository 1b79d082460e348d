"""The console's small per-user config file: the chosen theme and key overrides.

Lives at ``$RNET_CONFIG_DIR/console.toml`` (default: ``$XDG_CONFIG_HOME/rnet`` or
``~/.config/rnet``; ``%APPDATA%\\rnet`` on Windows). Example::

    theme = "rnet-light"

    [keymap]
    advertise = "A"          # binding id -> key(s), comma separated
    pipe = "ctrl+p,p"

A missing or broken file never stops the console: it falls back to the defaults and says why in
the log pane. Only the console writes this file (when the theme changes).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

CONFIG_ENV = "RNET_CONFIG_DIR"
CONFIG_FILE = "console.toml"


def config_dir() -> Path:
    """The directory holding ``console.toml`` (``RNET_CONFIG_DIR`` overrides; tests use it)."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "rnet"


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


@dataclass
class Settings:
    """What the console remembers between runs."""

    theme: str | None = None
    """Name of the last chosen theme (None: the default)."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id -> key string overrides (Textual keymap format)."""
    problem: str | None = None
    """Why the file could not be used, if it could not (shown in the log, never raised)."""

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or config_path()
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            return cls(problem=f"cannot read {path}: {exc}")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return cls(problem=f"ignoring {path}: {exc}")
        settings = cls()
        theme = data.get("theme")
        if isinstance(theme, str) and theme:
            settings.theme = theme
        keymap = data.get("keymap", {})
        if isinstance(keymap, dict):
            settings.keymap = {
                str(k): str(v) for k, v in keymap.items() if isinstance(v, str) and v.strip()
            }
        else:
            settings.problem = f"ignoring [keymap] in {path}: not a table"
        return settings

    def save(self, path: Path | None = None) -> None:
        """Write the file atomically (a crash mid-write must not lose the keymap)."""
        path = path or config_path()
        # JSON string literals are valid TOML basic strings, which keeps this writer tiny.
        lines = []
        if self.theme:
            lines.append(f"theme = {json.dumps(self.theme)}")
        if self.keymap:
            lines += ["", "[keymap]"]
            lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(self.keymap.items())]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, path)
