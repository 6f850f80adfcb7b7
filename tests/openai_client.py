"""Drives Triage's OpenAI-compatible endpoint with the official `openai` package, unchanged.

Usage: TRIAGE_HTTP=http://127.0.0.1:PORT/v1 TRIAGE_KEY=sk-... python3 tests/openai_client.py
Prints one JSON summary line; exits non-zero on the first mismatch.
"""

import json
import os
import sys

import openai

base_url = os.environ["TRIAGE_HTTP"]
key = os.environ["TRIAGE_KEY"]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
summary = {}

# Models: the routing model and the declared ones.
models = [m.id for m in client.models.list()]
assert models[0] == "triage/auto", models
assert len(models) > 1, models
summary["models"] = models

# Non-streaming, by policy; the decision comes back in headers.
raw = client.chat.completions.with_raw_response.create(
    model="triage/auto",
    messages=[
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "What are your opening hours on Saturday?"},
    ],
    max_tokens=8,
    temperature=0,
    user="user-1",
)
completion = raw.parse()
assert completion.object == "chat.completion", completion
assert completion.choices[0].message.role == "assistant"
assert completion.choices[0].message.content, completion
assert completion.choices[0].finish_reason in ("stop", "length")
assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
for h in ("x-triage-request-id", "x-triage-model", "x-triage-rule", "x-triage-conversation-id"):
    assert raw.headers.get(h), (h, dict(raw.headers))
assert raw.headers["x-triage-model"] == completion.model
assert completion.id == "chatcmpl-" + raw.headers["x-triage-request-id"]
conversation = raw.headers["x-triage-conversation-id"]
summary["unary"] = {"model": completion.model, "rule": raw.headers["x-triage-rule"], "reply": completion.choices[0].message.content}

# Streaming, continuing the same conversation, with the final usage chunk.
stream = client.chat.completions.create(
    model="triage/auto",
    messages=[{"role": "user", "content": "And on Sunday?"}],
    max_tokens=8,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
    extra_headers={"x-triage-conversation-id": conversation},
)
chunks = list(stream)
assert all(c.object == "chat.completion.chunk" for c in chunks)
assert len({c.id for c in chunks}) == 1
assert chunks[0].choices[0].delta.role == "assistant"
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text, chunks
finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
assert len(finals) == 1 and finals[0].choices[0].finish_reason in ("stop", "length"), finals
assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0, chunks[-1]
assert all(c.usage is None for c in chunks[:-1])
summary["stream"] = {"chunks": len(chunks), "text": text, "model": finals[0].model}

# Streaming without usage; a declared model name pins the model.
pinned = models[1]
stream = client.chat.completions.create(
    model=pinned, messages=[{"role": "user", "content": "Hello"}], max_tokens=4, stream=True
)
chunks = list(stream)
assert chunks and all(c.choices for c in chunks), chunks
summary["pinned_stream"] = {"requested": pinned, "answered": chunks[-1].model}

# Errors arrive as the package's typed exceptions.
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("unknown model accepted")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body
try:
    client.chat.completions.create(model="triage/auto", messages=[{"role": "assistant", "content": "hi"}])
    raise AssertionError("no user message accepted")
except openai.BadRequestError as e:
    assert e.body["param"] == "messages", e.body
try:
    client.chat.completions.create(
        model="triage/auto",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-triage-conversation-id": "does-not-exist"},
    )
    raise AssertionError("unknown conversation accepted")
except openai.NotFoundError:
    pass
bad = openai.OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("wrong key accepted")
except openai.AuthenticationError as e:
    assert e.body["code"] == "invalid_api_key", e.body
summary["errors"] = "ok"

print(json.dumps(summary))
sys.exit(0)
