"""Console tests: Pilot-driven, no network unless a test says so. Never touch the user's config."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every console test gets its own config dir (theme/keymap file) via RNET_CONFIG_DIR."""
    path = tmp_path / "config"
    monkeypatch.setenv("RNET_CONFIG_DIR", str(path))
    return path
