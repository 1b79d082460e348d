"""Capacity settings (issue 14): --slots and its backend default, --queue for the gateway."""

from __future__ import annotations

import argparse

import pytest

from node.gateway_settings import add_gateway_flags, gateway_settings
from node.sessions.options import add_session_flags, options_from_args
from node.sessions.slots import SIM_SLOTS, default_slots
from node.settings import Environment


def test_slots_default_from_the_backend() -> None:
    assert default_slots("sim", {}) == SIM_SLOTS
    assert default_slots("ollama", {}) == 1
    assert default_slots("ollama", {"OLLAMA_NUM_PARALLEL": "3"}) == 3
    assert default_slots("ollama", {"OLLAMA_NUM_PARALLEL": "lots"}) == 1
    assert default_slots("ollama", {"OLLAMA_NUM_PARALLEL": "0"}) == 1


def test_slots_flag() -> None:
    parser = argparse.ArgumentParser()
    add_session_flags(parser)
    assert options_from_args(parser.parse_args(["--slots", "2"])).slots == 2
    assert options_from_args(parser.parse_args([])).slots == 0  # 0: the backend's default
    with pytest.raises(ValueError, match="--slots"):
        options_from_args(parser.parse_args(["--slots", "1000"]))


def test_queue_flag_beats_environment() -> None:
    parser = argparse.ArgumentParser()
    add_gateway_flags(parser)
    env = Environment(environ={"RNET_SERVE_QUEUE": "7"}, dotenv={})
    assert gateway_settings(parser.parse_args([]), env)[1]["max_queue"] == 7
    assert gateway_settings(parser.parse_args(["--queue", "0"]), env)[1]["max_queue"] == 0
    none = Environment(environ={}, dotenv={})
    assert "max_queue" not in gateway_settings(parser.parse_args([]), none)[1]
    with pytest.raises(ValueError, match="--queue"):
        gateway_settings(
            parser.parse_args([]), Environment(environ={"RNET_SERVE_QUEUE": "x"}, dotenv={})
        )
    with pytest.raises(ValueError, match="--queue"):
        gateway_settings(parser.parse_args(["--queue", "-1"]), none)
