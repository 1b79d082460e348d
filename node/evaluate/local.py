"""``rnet eval --local N``: a throwaway swarm on this machine for one evaluation -- a bootstrap on
a free port and ``N`` headless providers with the model flags given to ``rnet eval`` (so a
simulated swarm runs exactly the parameters the report's prediction assumes). Child processes
of :class:`node.localswarm.LocalSwarm`, logging to ``<root>/logs/``, stopped together.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from node.localswarm import LocalSwarm, child_env, demo_bootstrap_maddr, free_port, node_argv

# The model flags a provider of the local swarm takes over from `rnet eval`.
FORWARDED = (
    "backend",
    "model",
    "ollama_host",
    "timeout_gen",
    "timeout_judge",
    "sim_profile",
    "sim_seed",
    "sim_p",
    "sim_judge_q",
    "sim_gen_ms",
    "sim_judge_ms",
    "sim_friend",
)


def provider_flags(args: argparse.Namespace) -> list[str]:
    flags: list[str] = []
    for name in FORWARDED:
        value = getattr(args, name, None)
        if value is not None and value is not False:
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


class LocalEvalSwarm:
    """Start with :meth:`start` (returns the bootstrap's multiaddr), stop with :meth:`stop`."""

    def __init__(self, root: Path, providers: int, args: argparse.Namespace) -> None:
        self.root = Path(root)
        self.providers = providers
        self.flags = provider_flags(args)
        self.swarm: LocalSwarm | None = None

    def start(self) -> str:
        port = free_port()
        maddr = demo_bootstrap_maddr(port)
        env = child_env(data_root=self.root / "data", bootstrap_node=maddr)
        self.swarm = LocalSwarm(self.root, env)
        self.swarm.spawn("bootstrap", node_argv("bootstrap", "bootstrap", ["--port", str(port)]))
        for i in range(1, self.providers + 1):
            self.swarm.spawn(f"p{i}", node_argv("node", f"p{i}", self.flags))
        self.swarm.watch()
        return maddr

    def stop(self) -> None:
        if self.swarm is not None:
            self.swarm.stop()
