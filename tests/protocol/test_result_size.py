"""The signed result stays small: hashes, not copies (issue 15). Prints the result envelope's size
at N = 3, 12, 24 providers (``pytest -s`` shows it) and holds it to a bound."""

from __future__ import annotations

import pytest

from protocol.envelope import open_envelope
from protocol.messages import Advertise
from tests.protocol.helpers import Swarm

ADV = Advertise(prompt="What is 2+2?", join_ms=1_000, exec_ms=2_000, verify_ms=3_000)


@pytest.mark.parametrize(("n", "bound"), [(3, 1_200), (12, 3_000), (24, 6_500)])
def test_result_envelope_size(n: int, bound: int) -> None:
    s = Swarm(providers=n, auto_assign_at=n, advertise=ADV, canary_rate=0.1, seed=n)
    s.participant_kw = {"batch_scores": True}
    s.run_to_end()
    result = next(r for r in s.stored[s.leader_id] if open_envelope(r).kind == "result")
    reveal = sum(len(r) for r in s.stored[s.leader_id] if open_envelope(r).kind == "reveal")
    text = len(open_envelope(result).body.text.encode())  # type: ignore[union-attr]
    print(
        f"N={n}: result envelope {len(result)} bytes (winning text {text} bytes), "
        f"reveal {reveal} bytes, {len(s.leader.executors)} executors x "
        f"{len(s.leader.verifiers)} verifiers"
    )
    assert len(result) - text <= bound
