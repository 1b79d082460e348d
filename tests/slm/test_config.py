"""Backend flags and their precedence: flag > environment (.env) > default."""

from __future__ import annotations

import argparse

import pytest

from node.slm.base import GenParams, SLMError
from node.slm.config import (
    DEFAULT_HOST,
    DEFAULT_MODEL,
    add_backend_flags,
    backend_from_args,
    normalise_host,
)
from node.slm.ollama_backend import OllamaBackend
from node.slm.sim import SimBackend


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_backend_flags(parser)
    return parser.parse_args(list(argv))


def test_defaults_build_the_ollama_backend() -> None:
    backend = backend_from_args(_parse(), "n1", environ={})
    assert isinstance(backend, OllamaBackend)
    assert (backend.host, backend.model, backend.name) == (DEFAULT_HOST, DEFAULT_MODEL, "n1")
    assert (backend.backend, backend.simulated) == ("ollama", False)


def test_environment_then_flags_win() -> None:
    env = {"OLLAMA_HOST": "10.0.0.5", "RNET_MODEL": "llama3.2:1b"}
    backend = backend_from_args(_parse(), "n", environ=env)
    assert (backend.host, backend.model) == ("http://10.0.0.5:11434", "llama3.2:1b")
    backend = backend_from_args(
        _parse("--ollama-host", "http://h:1234", "--model", "phi3"), "n", environ=env
    )
    assert (backend.host, backend.model) == ("http://h:1234", "phi3")
    assert isinstance(backend_from_args(_parse(), "n", environ={"RNET_BACKEND": "sim"}), SimBackend)


def test_sim_flags() -> None:
    args = _parse(
        "--backend",
        "sim",
        "--sim-profile",
        "adversarial",
        "--sim-seed",
        "9",
        "--sim-p",
        "0.3",
        "--sim-gen-ms",
        "5",
        "--sim-judge-ms",
        "6",
        "--sim-friend",
        "bob",
        "--timeout-gen",
        "2",
    )
    backend = backend_from_args(args, "mallory", environ={})
    assert isinstance(backend, SimBackend)
    assert backend.model == "sim/adversarial" and backend.simulated and backend.backend == "sim"
    assert (backend.seed, backend.p, backend.gen_ms, backend.judge_ms) == (9, 0.3, 5.0, 6.0)
    assert (backend.friend, backend.name, backend.timeout_gen) == ("bob", "mallory", 2.0)


@pytest.mark.parametrize(
    "argv",
    [
        ["--backend", "gpt"],
        ["--timeout-gen", "0"],
        ["--timeout-judge", "-1"],
        ["--timeout-gen", "soon"],
        ["--sim-p", "2"],
        ["--sim-gen-ms", "-5"],
        ["--sim-profile", "evil"],
    ],
)
def test_bad_flags_are_argparse_errors(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        _parse(*argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_environment_is_a_config_error() -> None:
    with pytest.raises(SLMError, match="unknown backend") as err:
        backend_from_args(_parse(), "n", environ={"RNET_BACKEND": "gpt"})
    assert err.value.kind == "config"
    with pytest.raises(SLMError, match="scheme"):
        backend_from_args(_parse(), "n", environ={"OLLAMA_HOST": "ftp://x"})


@pytest.mark.parametrize(
    ("given", "url"),
    [
        (None, DEFAULT_HOST),
        ("", DEFAULT_HOST),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":5000", "http://127.0.0.1:5000"),
        ("example.com:8080", "http://example.com:8080"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com/ollama/", "https://example.com:443/ollama"),
        ("[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_host_normalisation_matches_ollama(given: str | None, url: str) -> None:
    assert normalise_host(given) == url


def test_gen_params_validation() -> None:
    assert GenParams.from_mapping(None) == GenParams()
    assert GenParams.from_mapping({"seed": 1, "extra": "x"}).to_options() == {"seed": 1}
    for bad in (
        {"temperature": True},
        {"top_p": 2.0},
        {"seed": 1.5},
        {"temperature": float("nan")},
    ):
        with pytest.raises(SLMError) as err:
            GenParams.from_mapping(bad)
        assert err.value.kind == "bad_input"
    with pytest.raises(SLMError, match="mapping"):
        GenParams.from_mapping([1, 2])  # type: ignore[arg-type]
