"""node/settings.py: one precedence for every setting — flag > environment > .env > default."""

from __future__ import annotations

import argparse

import pytest

from node.gateway_settings import DEFAULT_LISTEN, gateway_settings
from node.settings import Environment


def test_flag_beats_environment_beats_dotenv_beats_default() -> None:
    env = Environment(environ={"A": "env", "B": ""}, dotenv={"A": "file", "B": "file", "C": "c"})
    assert env.pick("flag", "A", "default") == "flag"
    assert env.pick(None, "A", "default") == "env"
    assert env.pick(None, "B", "default") == "file"  # an empty environment value is unset
    assert env.pick(None, "C", "default") == "c"
    assert env.pick(None, "D", "default") == "default"
    assert env.pick("", "A", "default") == "env"  # an empty flag is not given either
    assert env.pick(0, "A", 7, int) == 0  # 0 is a value, not "not given"


def test_parse_errors_come_out_as_value_errors() -> None:
    env = Environment(environ={"N": "x"}, dotenv={})
    with pytest.raises(ValueError):
        env.pick(None, "N", 1, int)


def test_gateway_settings_read_through_the_same_rule() -> None:
    args = argparse.Namespace(listen=None, token=None)
    env = Environment(environ={}, dotenv={"RNET_SERVE_LISTEN": "127.0.0.1:9"})
    assert gateway_settings(args, env)[0] == "127.0.0.1:9"
    assert gateway_settings(args, Environment(environ={}, dotenv={}))[0] == DEFAULT_LISTEN
    args = argparse.Namespace(listen="127.0.0.1:7", token=None)
    assert gateway_settings(args, env)[0] == "127.0.0.1:7"
    with pytest.raises(ValueError, match="--token"):
        gateway_settings(argparse.Namespace(listen="0.0.0.0:1", token=None), env)
