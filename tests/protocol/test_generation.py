"""Generation fields (issue 17): options, format, tools in the advertisement; tool calls, done
reason and counts in the response; the structured-output rules the leader applies."""

from __future__ import annotations

import random

import pytest

from protocol.envelope import open_envelope, seal
from protocol.errors import MalformedError, OversizeError, ProtocolError, RangeError
from protocol.generation import MAX_STOP, GenOptions
from protocol.messages import (
    Advertise,
    Assign,
    Item,
    Join,
    Presence,
    Response,
    Score,
    body_from_wire,
)
from protocol.session import (
    Aborted,
    Generate,
    Judge,
    LeaderSession,
    Notice,
    ParticipantSession,
    Publish,
    Rejected,
)
from protocol.structured import answer_problem, format_problem, judged_answer, schema_problem
from tests.protocol.strategies import SIGNERS

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city"],
        },
    },
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}, "maxItems": 2},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
    "$defs": {"Pet": {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}}}},
}


def roundtrip(body):
    task = "" if body.KIND == "presence" else "task-1"
    raw = seal(body, task=task, signer=SIGNERS[0], seq=1, ts_ms=0).raw
    return open_envelope(raw).body


def test_advertise_carries_options_format_tools_over_the_wire() -> None:
    adv = Advertise(
        prompt="hi",
        options=GenOptions(num_predict=3, stop=("\n", "END"), temperature=0, seed=7, top_p=0.5),
        format=PERSON,
        tools=(WEATHER,),
        tool_choice="required",
    )
    back = roundtrip(adv)
    assert back == adv
    assert back.options.stop == ("\n", "END") and back.options.temperature == 0.0
    assert back.options.as_params() == {
        "num_predict": 3,
        "stop": ["\n", "END"],
        "temperature": 0.0,
        "seed": 7,
        "top_p": 0.5,
    }
    assert roundtrip(Advertise(prompt="hi")).options == GenOptions()


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"options": {"num_predict": 0}}, MalformedError, "options"),
        ({"format": "xml"}, RangeError, "format"),
        ({"format": {"type": "object", "x": "y" * 10_000}}, OversizeError, "format"),
        ({"format": {"a": float("nan")}}, RangeError, "format"),
        ({"tools": [{"type": "retrieval"}]}, RangeError, "tools[0].type"),
        ({"tools": [WEATHER, WEATHER]}, RangeError, "tools[1].name"),
        ({"tools": [WEATHER] * 17}, OversizeError, "tools"),
        ({"tool_choice": "required"}, RangeError, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "send_mail"}, RangeError, "tool_choice"),
    ],
)
def test_advertise_refuses_bad_generation_fields(kwargs, error, field) -> None:
    with pytest.raises(error) as info:
        Advertise(prompt="hi", **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    "options",
    [
        {"num_predict": 0},
        {"num_predict": True},
        {"temperature": -0.1},
        {"temperature": float("inf")},
        {"top_p": 1.5},
        {"seed": 2**64},
        {"stop": "\n"},
        {"stop": [""]},
        {"stop": ["x" * 65]},
        {"stop": ["a"] * (MAX_STOP + 1)},
    ],
)
def test_gen_options_limits(options) -> None:
    with pytest.raises(ProtocolError):
        GenOptions(**options)


def test_response_tool_calls_done_reason_counts() -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    resp = Response("", "m", 5, tool_calls=(call,), done_reason="length", eval_tokens=3)
    assert roundtrip(resp) == resp
    with pytest.raises(RangeError):
        Response("x", "m", done_reason="tired")
    with pytest.raises(MalformedError):
        Response("x", "m", tool_calls=({"name": "f"},))
    with pytest.raises(RangeError):
        Response("x", "m", tool_calls=({"name": "rm -rf", "arguments": {}},))
    with pytest.raises(RangeError):
        Response("x", "m", eval_tokens=-1)
    wire = resp.to_wire()
    wire.pop("done_reason")
    with pytest.raises(MalformedError):
        body_from_wire("response", wire)  # strict: every field present


def test_join_and_presence_carry_capabilities() -> None:
    assert roundtrip(Join("m", "sim", ("completion", "tools"))).capabilities == (
        "completion",
        "tools",
    )
    assert roundtrip(Presence("n", capabilities=("json",))).capabilities == ("json",)
    with pytest.raises(OversizeError):
        Join("m", "sim", ("x",) * 9)


# --- the structured-output rules -------------------------------------------------------------
def test_schema_subset() -> None:
    assert schema_problem(PERSON, {"name": "Ann", "age": None, "pets": [{"kind": "cat"}]}) is None
    assert "missing required property 'age'" in schema_problem(PERSON, {"name": "Ann"})
    assert "unexpected property" in schema_problem(PERSON, {"name": "A", "age": 1, "x": 1})
    assert "anyOf" in schema_problem(PERSON, {"name": "A", "age": "old"})
    assert "allowed values" in schema_problem(
        PERSON, {"name": "A", "age": 1, "pets": [{"kind": 1}]}
    )
    assert "more than 2" in schema_problem(PERSON, {"name": "A", "age": 1, "pets": [{}, {}, {}]})
    assert "shorter" in schema_problem(PERSON, {"name": "", "age": 1})
    assert schema_problem({"type": "integer"}, 3.0) is None
    assert schema_problem({"type": "integer"}, True) is not None
    assert schema_problem({"type": "number", "maximum": 1}, 2) is not None
    # a self-referencing schema terminates
    loop = {"$ref": "#", "type": "object"}
    assert "too deep" in schema_problem(loop, {})
    # pattern is not checked (no regex on peer text), nor is an unknown keyword
    assert schema_problem({"type": "string", "pattern": "(a+)+$"}, "a" * 5000 + "b") is None


def test_format_problem() -> None:
    assert format_problem(None, "free text") is None
    assert format_problem("json", ' {"a": 1} ') is None
    assert "not valid JSON" in format_problem("json", "Sure! {'a': 1}")
    assert "schema" in format_problem(PERSON, '{"name": "Ann"}')


def test_answer_problem_tools_and_choice() -> None:
    adv = Advertise(prompt="weather in Paris?", tools=(WEATHER,))
    good = Response("", "m", tool_calls=({"name": "get_weather", "arguments": {"city": "P"}},))
    assert answer_problem(adv, good) is None
    assert answer_problem(adv, Response("It is sunny.", "m")) is None  # auto: text is fine
    other = Response("", "m", tool_calls=({"name": "send_mail", "arguments": {}},))
    assert "not offered" in answer_problem(adv, other)
    bad_args = Response("", "m", tool_calls=({"name": "get_weather", "arguments": {"days": 0}},))
    assert "do not fit" in answer_problem(adv, bad_args)
    required = Advertise(prompt="x", tools=(WEATHER,), tool_choice="required")
    assert "required" in answer_problem(required, Response("text", "m"))
    named = Advertise(prompt="x", tools=(WEATHER,), tool_choice="get_weather")
    assert answer_problem(named, good) is None
    assert judged_answer(good) == '[calls tool get_weather with arguments {"city":"P"}]'


# --- the session drops what does not fit -----------------------------------------------------
_seq = [100]


def env(signer, body):
    _seq[0] += 1
    return open_envelope(seal(body, task="task-1", signer=signer, seq=_seq[0], ts_ms=0).raw)


def _leader(adv: Advertise) -> LeaderSession:
    # no canaries: every item is an executor's answer
    leader = LeaderSession("task-1", SIGNERS[0].peer_id, adv, rng=random.Random(0), canary_rate=0)
    leader.start(0)
    for s in SIGNERS[1:5]:
        leader.receive(env(s, Join("m", "sim")), 10)
    leader.ack(100)
    return leader


def _signer(peer: bytes):
    return next(s for s in SIGNERS if s.peer_id == peer)


def test_leader_drops_answers_that_do_not_validate() -> None:
    adv = Advertise(prompt="a person as JSON", format=PERSON, exec_ms=2_000, verify_ms=3_000)
    leader = _leader(adv)
    e1, e2 = leader.executors
    effects = leader.receive(env(_signer(e1), Response("Sure: Ann, 30", "m")), 200)
    (rej,) = [e for e in effects if isinstance(e, Rejected)]
    assert rej.reason == "invalid_answer" and "not valid JSON" in rej.detail
    # a second try by the same executor is a duplicate, not a fresh chance
    retry = leader.receive(env(_signer(e1), Response('{"name":"A","age":1}', "m")), 210)
    assert [e.reason for e in retry if isinstance(e, Rejected)] == ["duplicate"]
    effects = leader.receive(env(_signer(e2), Response('{"name": "Bo", "age": 3}', "m")), 220)
    # only the valid answer goes to the judges, blind
    items = [e.body for e in effects if isinstance(e, Publish) and isinstance(e.body, Item)]
    assert [i.label for i in items] == [leader.labels[e2]] and set(leader.items) == {items[0].label}
    # every executor settled: verification starts at once, without waiting for the deadline
    assert leader.stage == "verify" and set(leader.responses) == {e2}
    assert leader.invalid.keys() == {e1}
    for v in leader.verifiers:
        leader.receive(env(_signer(v), Score(leader.labels[e2], 0.8)), 300)
    assert leader.result is not None and leader.result.text == '{"name": "Bo", "age": 3}'
    assert e1 in leader.result.missing  # dropped: shown as a missing executor


def test_session_aborts_when_no_answer_validates() -> None:
    leader = _leader(Advertise(prompt="json please", format="json"))
    effects = []
    for ex in leader.executors:
        effects += leader.receive(env(_signer(ex), Response("not json", "m")), 200)
    assert [e for e in effects if isinstance(e, Aborted)] and leader.stage == "aborted"
    assert "no valid answer: 2 dropped (not valid JSON" in (leader.abort_reason or "")


def test_executor_gets_options_and_verifier_judges_tool_calls() -> None:
    opts = GenOptions(num_predict=3, stop=("\n",))
    adv = Advertise(prompt="weather in Paris?", options=opts, tools=(WEATHER,))
    leader = _leader(adv)
    machines = {
        s.peer_id: ParticipantSession(
            "task-1", s.peer_id, SIGNERS[0].peer_id, adv, model="m", backend="sim"
        )
        for s in SIGNERS[1:5]
    }
    assign = env(SIGNERS[0], Assign(leader.executors, leader.verifiers, adv.prompt))
    generates = []
    for machine in machines.values():
        machine.start(0)
        generates += [e for e in machine.receive(assign, 100) if isinstance(e, Generate)]
    assert len(generates) == 2
    assert all((g.options, g.tools, g.tool_choice) == (opts, (WEATHER,), "auto") for g in generates)
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    answer = env(_signer(leader.executors[0]), Response("", "m", tool_calls=(call,)))
    # the leader forwards the answer as an item whose text renders the tool call
    (item,) = [e.body for e in leader.receive(answer, 150) if isinstance(e, Publish)]
    assert isinstance(item, Item) and "calls tool get_weather" in item.text
    judges = []
    for peer in leader.verifiers:
        judged = machines[peer].receive(env(SIGNERS[0], item), 200)
        judges += [e for e in judged if isinstance(e, Judge)]
    assert len(judges) == 2
    assert all("get_weather" in j.text and "may call" in j.prompt for j in judges)


def test_executor_reports_tool_calls_and_counts() -> None:
    adv = Advertise(prompt="weather?", tools=(WEATHER,))
    leader = _leader(adv)
    ex = leader.executors[0]
    machine = ParticipantSession("task-1", ex, SIGNERS[0].peer_id, adv, model="m", backend="sim")
    machine.start(0)
    machine.receive(env(SIGNERS[0], Assign(leader.executors, leader.verifiers, adv.prompt)), 100)
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    effects = machine.generation_done(
        "", "m", 5, 150, tool_calls=(call,), done_reason="stop", eval_tokens=7
    )
    (body,) = [e.body for e in effects if isinstance(getattr(e, "body", None), Response)]
    assert body.tool_calls == (call,) and body.eval_tokens == 7
    # a backend handing over something the protocol refuses: a visible failure, no crash
    other = ParticipantSession(
        "task-1", leader.executors[1], SIGNERS[0].peer_id, adv, model="m", backend="sim"
    )
    other.start(0)
    other.receive(env(SIGNERS[0], Assign(leader.executors, leader.verifiers, adv.prompt)), 100)
    bad = other.generation_done("", "m", 5, 150, tool_calls=({"name": "a b", "arguments": {}},))
    assert [e for e in bad if isinstance(e, Notice)] and not [
        e for e in bad if isinstance(getattr(e, "body", None), Response)
    ]
