"""Generation options, structured output and tools in both backends (issue 17): the Ollama
backend through the official client against the double, the simulation directly."""

from __future__ import annotations

import json

import pytest

from node.slm.base import SLMError
from node.slm.ollama_backend import OllamaBackend
from node.slm.sim import SimBackend
from protocol.structured import format_problem, schema_problem
from tests.ollama_double import OllamaDouble, Reply
from tests.tool_specs import WEATHER

from .conftest import MODEL

MAIL = {
    "type": "function",
    "function": {"name": "send_mail", "description": "send an email", "parameters": {}},
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


async def test_ollama_passes_options_and_reports_length_and_counts(
    double: OllamaDouble, backend: OllamaBackend
) -> None:
    gen = await backend.generate(
        "Tell me a long story", {"num_predict": 3, "stop": ["\n"], "temperature": 0.1}
    )
    body = double.requests_to("/api/chat")[-1].body
    assert body["options"]["num_predict"] == 3 and body["options"]["stop"] == ["\n"]
    assert gen.done_reason == "length" and gen.eval_tokens == 3
    assert gen.prompt_tokens > 0 and gen.response_fields()["prompt_ms"] >= 0
    full = await backend.generate("Tell me a long story")
    assert full.done_reason == "stop" and len(full.text) > len(gen.text)


async def test_ollama_structured_output(double: OllamaDouble, backend: OllamaBackend) -> None:
    gen = await backend.generate("Who is Ann?", format=PERSON)
    assert double.requests_to("/api/chat")[-1].body["format"] == PERSON
    assert format_problem(PERSON, gen.text) is None
    gen = await backend.generate("Any JSON", format="json")
    assert isinstance(json.loads(gen.text), dict)


async def test_ollama_tool_calls(double: OllamaDouble, backend: OllamaBackend) -> None:
    gen = await backend.generate("What is the weather in Paris?", tools=[MAIL, WEATHER])
    sent = double.requests_to("/api/chat")[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["send_mail", "get_weather"]
    assert gen.tool_calls == ({"name": "get_weather", "arguments": {"city": "Paris"}},)
    double.script(MODEL, Reply(tool_calls=[{"name": "send_mail", "arguments": {"to": "x"}}]))
    gen = await backend.generate("mail x", tools=[MAIL], tool_choice="required")
    assert gen.tool_calls[0]["name"] == "send_mail"
    system = double.requests_to("/api/chat")[-1].body["messages"][0]["content"]
    assert "You must call one of the tools" in system


async def test_ollama_capabilities_from_show() -> None:
    async with OllamaDouble(models=[]) as double:
        double.add_model("tooly:1b")
        double.add_model("plain:1b", tools=False)
        tooly = OllamaBackend(name="t", model="tooly:1b", host=double.url)
        plain = OllamaBackend(name="p", model="plain:1b", host=double.url)
        await tooly.check()
        await plain.check()
        assert "tools" in tooly.capabilities and "tools" not in plain.capabilities
        with pytest.raises(SLMError, match="does not support tools"):
            await plain.generate("weather?", tools=[WEATHER])
        await tooly.aclose()
        await plain.aclose()


async def test_sim_honours_num_predict_stop_and_stays_labelled() -> None:
    sim = SimBackend(name="alice")
    full = await sim.generate("What is the capital of France?")
    cut = await sim.generate("What is the capital of France?", {"num_predict": 3})
    assert cut.text.startswith("[simulated sim/honest@alice]") and cut.done_reason == "length"
    assert cut.eval_tokens == 3 and len(cut.text.split()) < len(full.text.split())
    assert full.done_reason == "stop" and full.eval_tokens == len(full.text.split()) - 1
    stopped = await sim.generate("What is the capital of France?", {"stop": ["answer"]})
    assert stopped.text == "[simulated sim/honest@alice] The "  # as a server stops: mid-line
    with pytest.raises(SLMError):
        await sim.generate("x", {"stop": "not a list"})


async def test_sim_structured_output_fits_the_schema() -> None:
    sim = SimBackend(name="alice")
    gen = await sim.generate("What is 2+2?", format="json")
    assert "simulated" in json.loads(gen.text)["answer"]
    gen = await sim.generate("Describe a person", format=PERSON)
    assert schema_problem(PERSON, json.loads(gen.text)) is None


async def test_sim_tool_calls_are_plausible_and_labelled() -> None:
    sim = SimBackend(name="alice", p=1.0)
    gen = await sim.generate("What is the weather in Paris?", tools=[MAIL, WEATHER])
    assert gen.tool_calls == ({"name": "get_weather", "arguments": {"city": "Paris"}},)
    assert gen.text.startswith("[simulated sim/honest@alice]")
    # after the tool answered, the simulated model answers in text
    followup = (
        "User: weather in Paris?\n\nAssistant: [called get_weather]\n\nTool: 18C\n\nAssistant:"
    )
    gen = await sim.generate(followup, tools=[WEATHER])
    assert not gen.tool_calls and gen.text
    named = await sim.generate("anything", tools=[WEATHER, MAIL], tool_choice="send_mail")
    assert named.tool_calls[0]["name"] == "send_mail"


async def test_sim_judge_scores_tool_calls_against_the_conversation() -> None:
    from protocol.messages import Advertise, Response
    from protocol.structured import judged_answer, judged_prompt

    adv = Advertise(prompt="What is the weather in Paris?", tools=(MAIL, WEATHER))
    question = judged_prompt(adv, adv.prompt)
    judge = SimBackend(name="judge")

    def call(name: str) -> str:
        return judged_answer(Response("", "m", tool_calls=({"name": name, "arguments": {}},)))

    right, wrong = (
        await judge.judge(question, call("get_weather")),
        await judge.judge(question, call("send_mail")),
    )
    assert right.score > 0.6 > 0.4 > wrong.score
