"""The official openai client against `wgpt serve` running the scripted chat model.

The model (tests/common/chat_model.rs) reasons THINK on the analysis channel, answers ANSWER on
the final channel, calls get_weather with TOOL_ARGS when that tool is offered and not yet
called, and hums " la" for ever after a prompt ending in " la".

    WGPT_BASE_URL=http://127.0.0.1:PORT/v1 WGPT_MODEL=scripted pytest tests/serve
"""

import concurrent.futures
import json
import os
import time

import httpx
import openai
import pytest
from openai import OpenAI

BASE = os.environ["WGPT_BASE_URL"].rstrip("/")
ROOT = BASE[: -len("/v1")] if BASE.endswith("/v1") else BASE
MODEL = os.environ.get("WGPT_MODEL", "scripted")
CTX = int(os.environ.get("WGPT_CTX", "1024"))

THINK = "Musing: the user greets me."
ANSWER = "Hello from wgpt!"
TOOL = "get_weather"
TOOL_ARGS = '{"city":"Paris"}'
HI = [{"role": "user", "content": "Hi there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": TOOL,
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


@pytest.fixture(scope="module")
def client():
    return OpenAI(base_url=BASE, api_key="not-needed", max_retries=0, timeout=120)


def health():
    return httpx.get(f"{ROOT}/health", timeout=10).json()


def extra(obj, key):
    """A field the OpenAI schema does not declare (reasoning_content)."""
    return (obj.model_extra or {}).get(key)


def test_models_and_health(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == [MODEL]
    h = health()
    assert h["status"] == "ok" and h["slots"] >= 1


def test_chat_whole_answer_with_reasoning_and_usage(client):
    r = client.chat.completions.create(model=MODEL, messages=HI)
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == ANSWER
    assert extra(choice.message, "reasoning_content") == THINK
    assert choice.finish_reason == "stop"
    assert r.usage.prompt_tokens > 20
    # <|channel|>analysis<|message|> THINK <|end|><|start|>assistant<|channel|>final<|message|> ANSWER <|return|>
    assert r.usage.completion_tokens == 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}, reasoning_effort="low"
    )
    content, reasoning, finish, usage, ids = "", "", [], None, set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            content += c.delta.content or ""
            reasoning += extra(c.delta, "reasoning_content") or ""
            if c.finish_reason:
                finish.append(c.finish_reason)
    assert (content, reasoning, finish) == (ANSWER, THINK, ["stop"])
    assert len(ids) == 1
    assert usage is not None and usage.completion_tokens == 24


def test_tool_call_round_trip(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == TOOL
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"sky": "clear", "celsius": 21})})
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert r.choices[0].message.content == ANSWER
    assert r.choices[0].finish_reason == "stop"
    assert not r.choices[0].message.tool_calls

    # Streamed: one tool_calls delta carries the whole call.
    calls, finish = [], []
    for chunk in client.chat.completions.create(model=MODEL, messages=messages[:1], tools=TOOLS, stream=True):
        for c in chunk.choices:
            calls += c.delta.tool_calls or []
            if c.finish_reason:
                finish.append(c.finish_reason)
    assert [(c.function.name, c.function.arguments) for c in calls] == [(TOOL, TOOL_ARGS)]
    assert finish == ["tool_calls"]


def test_sampling_and_limits(client):
    r = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5
    assert THINK.startswith(extra(r.choices[0].message, "reasoning_content"))
    r = client.chat.completions.create(model=MODEL, messages=HI, max_completion_tokens=7)
    assert r.usage.completion_tokens == 7
    r = client.chat.completions.create(
        model=MODEL, messages=HI, temperature=0.7, top_p=0.9, seed=1234, stop=["wg"], reasoning_effort="high"
    )
    assert r.choices[0].message.content == "Hello from "
    assert r.choices[0].finish_reason == "stop"
    r = client.chat.completions.create(model=MODEL, messages=HI, temperature=0)
    assert r.choices[0].message.content == ANSWER


def test_completions(client):
    r = client.completions.create(model=MODEL, prompt="Hello from", max_tokens=10)
    assert r.choices[0].text == " wgpt!" and r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 4
    r = client.completions.create(model=MODEL, prompt="Hello from", max_tokens=2)
    assert (r.choices[0].text, r.choices[0].finish_reason) == (" wgpt", "length")
    text = "".join(c.choices[0].text for c in client.completions.create(model=MODEL, prompt="Hello", stream=True) if c.choices)
    assert text == " from wgpt!"


def expect_error(status, fn, param=None, code=None):
    with pytest.raises(openai.APIStatusError) as info:
        fn()
    err = info.value
    assert err.status_code == status, err
    body = err.body if isinstance(err.body, dict) else {}
    body = body.get("error", body)
    assert set(body) >= {"message", "type", "param", "code"}, body
    assert body["message"]
    if param is not None:
        assert body["param"] == param, body
    if code is not None:
        assert body["code"] == code, body


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(client):
    chat = client.chat.completions.create
    expect_error(404, lambda: chat(model="gpt-4o", messages=HI), param="model", code="model_not_found")
    for key, value in [
        ("temperature", 2.5),
        ("top_p", -0.1),
        ("max_tokens", 0),
        ("n", 2),
        ("frequency_penalty", 9),
        ("reasoning_effort", "extreme"),
        ("stop", ["a", "b", "c", "d", "e"]),
        ("seed", "abc"),
    ]:
        expect_error(400, lambda: chat(model=MODEL, messages=HI, **{key: value}), param=key)
    expect_error(400, lambda: chat(model=MODEL, messages=[{"role": "wizard", "content": "x"}]), param="messages")
    expect_error(400, lambda: chat(model=MODEL, messages=[]), param="messages")
    long_prompt = [{"role": "user", "content": "lorem ipsum " * CTX}]
    expect_error(400, lambda: chat(model=MODEL, messages=long_prompt), code="context_length_exceeded")
    expect_error(400, lambda: client.completions.create(model=MODEL, prompt="lorem ipsum " * CTX), code="context_length_exceeded")
    expect_error(400, lambda: chat(model=MODEL, messages=HI, tools=[{"type": "function", "function": {}}]), param="tools")

    # Malformed JSON and oversized bodies, below the client library.
    r = httpx.post(f"{BASE}/chat/completions", content=b'{"model": "', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    big = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * (5 << 20)}]})
    r = httpx.post(f"{BASE}/chat/completions", content=big, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    r = httpx.get(f"{BASE}/no/such/route")
    assert r.status_code == 404 and "error" in r.json()

    assert chat(model=MODEL, messages=HI).choices[0].message.content == ANSWER


def test_concurrent_clients_get_their_own_streams(client):
    """Each client asks for a different number of tokens, so a token in the wrong stream shows."""

    def chat_stream(max_tokens):
        reasoning, content, finish = "", "", None
        stream = client.chat.completions.create(
            model=MODEL, messages=HI, max_tokens=max_tokens, stream=True, stream_options={"include_usage": True}
        )
        usage = None
        for chunk in stream:
            usage = chunk.usage or usage
            for c in chunk.choices:
                reasoning += extra(c.delta, "reasoning_content") or ""
                content += c.delta.content or ""
                finish = c.finish_reason or finish
        return max_tokens, reasoning, content, finish, usage.completion_tokens

    def completion(prompt):
        return prompt, client.completions.create(model=MODEL, prompt=prompt, max_tokens=40).choices[0].text

    n = 9  # max_tokens 4..12: each adds one reasoning token
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        chats = list(pool.map(chat_stream, range(4, 4 + n)))
        completions = list(pool.map(completion, ["Hello", "Hello from", "Hello from wg", "tra la"]))
    lengths = []
    for max_tokens, reasoning, content, finish, used in chats:
        assert used == max_tokens and finish == "length", (max_tokens, used, finish)
        assert THINK.startswith(reasoning) and content == "", (max_tokens, reasoning, content)
        lengths.append(len(reasoning))
    assert lengths == sorted(lengths) and len(set(lengths)) == n
    assert dict(completions) == {
        "Hello": " from wgpt!",
        "Hello from": " wgpt!",
        "Hello from wg": "pt!",
        "tra la": " la" * 40,
    }


def test_a_disconnect_frees_the_slot(client):
    before = health()
    stream = client.completions.create(model=MODEL, prompt="tra la", max_tokens=900, stream=True)
    pieces = []
    for chunk in stream:
        pieces.append(chunk.choices[0].text)
        if len(pieces) == 5:
            break
    assert "".join(pieces) == " la" * 5
    assert health()["slots_busy"] == 1
    stream.close()
    deadline = time.time() + 30
    while True:
        h = health()
        if h["slots_busy"] == 0 and h["cancelled"] == before["cancelled"] + 1:
            break
        assert time.time() < deadline, h
        time.sleep(0.05)
    assert client.chat.completions.create(model=MODEL, messages=HI).choices[0].message.content == ANSWER
