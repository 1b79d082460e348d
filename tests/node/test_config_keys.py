"""Configuration precedence, .env parsing, data dirs, keys and ``rnet keygen``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from node import config
from node.config import ConfigError, add_node_flags, resolve_node_config
from node.keys import (
    DataDirLock,
    KeyError_,
    Libp2pSigner,
    bootstrap_pair,
    keypair_from_seed,
    load_or_create_seed,
    parse_seed,
)
from node.settings import read_dotenv
from protocol.identity import peer_id_to_str, verify

ROOT = Path(__file__).resolve().parents[2]


def parse(role: str, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_node_flags(parser, role=role)
    return parser.parse_args(list(argv))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "BOOTSTRAP_NODE",
        "BOOTSTRAP_KEY",
        "RNET_DATA_DIR",
        "RNET_ROUTER",
        "RNET_PORT",
        "RNET_HOST",
        "RNET_LOG_LEVEL",
        "RNET_ANNOUNCE",
        "XDG_DATA_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_env_example_pair_matches_and_equals_the_builtin_demo_pair() -> None:
    values = read_dotenv(ROOT / ".env.example")
    seed = parse_seed(values["BOOTSTRAP_KEY"])
    key, node = bootstrap_pair(seed, "127.0.0.1", 8888)
    assert key == values["BOOTSTRAP_KEY"]
    assert node == values["BOOTSTRAP_NODE"]
    assert (key, node) == (config.DEMO_BOOTSTRAP_KEY, config.DEMO_BOOTSTRAP_NODE)


def test_keygen_prints_a_matching_pair() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "node", "keygen", "--port", "9999"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split("=", 1) for line in proc.stdout.strip().splitlines())
    seed = parse_seed(lines["BOOTSTRAP_KEY"])
    assert bootstrap_pair(seed, "127.0.0.1", 9999)[1] == lines["BOOTSTRAP_NODE"]
    bad = subprocess.run(
        [sys.executable, "-m", "node", "keygen", "--seed", "xyz"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "64 hex" in bad.stderr


def test_dotenv_parsing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# comment\n\nA=1\nexport B = two \nC='quoted # not comment'\nD=\"x\"\nnot a line\nE=\n"
    )
    assert read_dotenv(env) == {
        "A": "1",
        "B": "two",
        "C": "quoted # not comment",
        "D": "x",
        "E": "",
    }
    assert read_dotenv(tmp_path / "missing") == {}


def test_precedence_flag_over_env_over_dotenv_over_default(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = resolve_node_config(parse("provider"), "provider")
    assert cfg.bootstrap == config.DEMO_BOOTSTRAP_NODE  # default
    assert cfg.port == 0 and cfg.host == "127.0.0.1" and cfg.router == "floodsub"
    assert cfg.data_dir == clean_env / "home" / ".local" / "share" / "rnet" / "node"

    (clean_env / ".env").write_text(
        "BOOTSTRAP_NODE=/ip4/10.0.0.1/tcp/1/p2p/fromdotenv\nRNET_DATA_DIR=/dotenv/dir\n"
    )
    cfg = resolve_node_config(parse("provider"), "provider")
    assert cfg.bootstrap.endswith("fromdotenv")
    assert cfg.data_dir == Path("/dotenv/dir/node")

    monkeypatch.setenv("BOOTSTRAP_NODE", "/ip4/10.0.0.2/tcp/2/p2p/fromenv")
    monkeypatch.setenv("XDG_DATA_HOME", "/xdg")
    monkeypatch.setenv("RNET_DATA_DIR", "")  # empty counts as unset -> .env wins
    cfg = resolve_node_config(parse("provider"), "provider")
    assert cfg.bootstrap.endswith("fromenv")

    cfg = resolve_node_config(
        parse(
            "provider",
            "--bootstrap",
            "/ip4/10.0.0.3/tcp/3/p2p/fromflag",
            "--name",
            "alice",
            "--data-dir",
            str(clean_env / "d"),
        ),
        "provider",
    )
    assert cfg.bootstrap.endswith("fromflag")
    assert cfg.name == "alice" and cfg.data_dir == clean_env / "d"

    (clean_env / ".env").unlink()
    monkeypatch.delenv("RNET_DATA_DIR")
    cfg = resolve_node_config(parse("bootstrap"), "bootstrap")
    assert cfg.port == 8888 and cfg.name == "bootstrap"
    assert cfg.data_dir == Path("/xdg/rnet/bootstrap")
    assert cfg.bootstrap_key == config.DEMO_BOOTSTRAP_KEY


def test_bad_config_values_are_clear_errors(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match="plain name"):
        resolve_node_config(parse("provider", "--name", "a/b"), "provider")
    with pytest.raises(ConfigError, match="port"):
        resolve_node_config(parse("provider", "--port", "70000"), "provider")
    with pytest.raises(ConfigError, match="max-dials"):
        resolve_node_config(parse("provider", "--max-dials", "-1"), "provider")


def test_announce_flag_over_env_validated_and_deduplicated(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_node_config(parse("provider"), "provider").announce == ()
    monkeypatch.setenv("RNET_ANNOUNCE", "/ip4/203.0.113.9/tcp/443, /ip4/198.51.100.1/tcp/9")
    cfg = resolve_node_config(parse("bootstrap"), "bootstrap")
    assert cfg.announce == ("/ip4/203.0.113.9/tcp/443", "/ip4/198.51.100.1/tcp/9")
    args = ["--announce", "/ip4/203.0.113.1/tcp/1", "--announce", "/ip4/203.0.113.1/tcp/1"]
    cfg = resolve_node_config(parse("provider", *args), "provider")
    assert cfg.announce == ("/ip4/203.0.113.1/tcp/1",)  # the flag wins over the environment
    with pytest.raises(ConfigError, match="wildcard"):
        resolve_node_config(parse("provider", "--announce", "/ip4/0.0.0.0/tcp/1"), "provider")
    with pytest.raises(ConfigError, match=r"--announce 'example.com:80'"):
        resolve_node_config(parse("provider", "--announce", "example.com:80"), "provider")


def test_key_is_persisted_and_reloaded(tmp_path: Path) -> None:
    seed = load_or_create_seed(tmp_path / "n")
    assert load_or_create_seed(tmp_path / "n") == seed
    assert (tmp_path / "n" / "node.key").stat().st_mode & 0o777 == 0o600
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "node.key").write_text("nothex")
    with pytest.raises(KeyError_, match=r"node\.key"):
        load_or_create_seed(tmp_path / "bad")


def test_libp2p_signer_signs_verifiably_with_the_libp2p_peer_id() -> None:
    seed = bytes(range(32))
    signer = Libp2pSigner(keypair_from_seed(seed))
    sig = signer.sign(b"data")
    assert verify(signer.peer_id, b"data", sig)
    assert not verify(signer.peer_id, b"other", sig)
    assert bootstrap_pair(seed)[1].endswith(peer_id_to_str(signer.peer_id))


def test_data_dir_lock_is_exclusive(tmp_path: Path) -> None:
    first, second = DataDirLock(tmp_path), DataDirLock(tmp_path)
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()
