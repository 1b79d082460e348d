"""Settings resolution, once for every setting of a node: flag > environment > ``.env`` > default.

Node, backend, session and gateway settings all read through here. Flags default to ``None`` so
"not given" can be told from "given the default"; an empty environment or ``.env`` value counts
as unset. Nothing here touches the disk at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse a ``.env`` file (KEY=VALUE lines, ``#`` comments, optional quotes). Missing -> {}."""
    path = path if path is not None else Path.cwd() / ".env"
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            logger.warning("%s:%d: ignoring malformed line", path, lineno)
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


class Environment(Mapping[str, str]):
    """The process environment over ``.env`` (in the current directory), empty values dropped.

    Read once per resolution, so every setting of one start sees the same values.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, dotenv: Mapping[str, str] | None = None
    ) -> None:
        file_values = read_dotenv() if dotenv is None else dotenv
        merged = {k: v for k, v in file_values.items() if v}
        merged.update({k: v for k, v in (os.environ if environ is None else environ).items() if v})
        self._values = merged

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def pick(
        self,
        flag: T | None,
        name: str,
        default: T,
        parse: Callable[[str], T] | None = None,
    ) -> T:
        """``flag`` if given, else ``$name`` (through ``parse``), else ``default``. ``parse``
        raises ValueError with a message fit for the user for a bad value."""
        if flag is not None and flag != "":
            return flag
        raw = self._values.get(name)
        if raw is None:
            return default
        return parse(raw) if parse is not None else raw  # type: ignore[return-value]


def getenv(
    name: str, default: str | None = None, *, dotenv: dict[str, str] | None = None
) -> str | None:
    """Environment variable, else the ``.env`` value, else ``default``. Empty counts as unset."""
    return Environment(dotenv=dotenv).get(name, default)


def user_data_root(env: Mapping[str, str] | None = None) -> Path:
    """``$RNET_DATA_DIR``, else ``$XDG_DATA_HOME/rnet``, else ``~/.local/share/rnet``."""
    env = Environment() if env is None else env
    explicit = env.get("RNET_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "rnet"


def default_data_dir(name: str, env: Mapping[str, str] | None = None) -> Path:
    """One subdirectory per node name under the user's data root."""
    return user_data_root(env) / name
