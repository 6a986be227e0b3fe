"""AWS Bedrock Claude (type 33) through the real gateway: SigV4 signatures checked by a fake
Bedrock that recomputes them, InvokeModel and the event-stream answer of
InvokeModelWithResponseStream, OpenAI chat and native /v1/messages, billing."""

from __future__ import annotations

from datetime import datetime, timezone

import anthropic
import httpx
import openai
import orjson
import pytest

from billing.models import Log
from relay.adaptors.bedrock import model_id
from relay.upstream import aws
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.bedrock_upstream import FakeBedrock

MODEL = "claude-3-5-sonnet-20241022"
PLAIN_QUOTA = 53  # (10 + 5×5) × 1.5 = 52.5 → 53
SECRETS = {"AKIDGOOD": "s3cr3t/Key+1", "throttle": "t-secret", "status-429": "x"}


@pytest.fixture(scope="module")
def fake() -> FakeBedrock:
    return FakeBedrock(secrets=dict(SECRETS)).start()


# -- units -------------------------------------------------------------------------------------------
def test_sigv4_matches_the_aws_documentation_example():
    """The GET ListUsers example from AWS's SigV4 documentation, signature included."""
    headers = aws.sign(
        "GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, b"",
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "iam",
        now=datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc),
    )
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


async def test_event_stream_decoding_buffers_and_checks_crcs():
    msgs = [aws.encode_message({":message-type": "event", ":event-type": "chunk"}, b'{"bytes":"e30="}'), aws.encode_message({"a": "b"}, b"")]
    data = b"".join(msgs)

    async def chunks(raw: bytes, size: int):
        for i in range(0, len(raw), size):
            yield raw[i : i + size]

    out = [m async for m in aws.iter_messages(chunks(data, 3))]
    assert out == [({":message-type": "event", ":event-type": "chunk"}, b'{"bytes":"e30="}'), ({"a": "b"}, b"")]
    broken = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(aws.EventStreamError):
        [m async for m in aws.iter_messages(chunks(broken, 64))]
    with pytest.raises(aws.EventStreamError):
        [m async for m in aws.iter_messages(chunks(data[:-3], 64))]


def test_model_ids_and_inference_profiles():
    assert model_id(MODEL, "us-east-1") == "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    assert model_id(MODEL, "eu-central-1") == "anthropic.claude-3-5-sonnet-20241022-v2:0"
    assert model_id("claude-3-haiku-20240307", "ap-northeast-1") == "apac.anthropic.claude-3-haiku-20240307-v1:0"
    assert model_id("claude-2.1", "us-west-2") == "anthropic.claude-v2:1"
    assert model_id("anthropic.claude-custom-v1:0", "us-east-1") == "anthropic.claude-custom-v1:0"


# -- through the gateway --------------------------------------------------------------------------------
def setup(gateway, fake, name: str, key: str):
    make_channel(fake.base_url, key=key, type=33, models=MODEL, name=f"aws-{name}")
    user = make_user(name, quota=1_000_000)
    token = make_token(user)
    return user, openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0), anthropic.Anthropic(base_url=gateway.url, api_key=f"sk-{token.key}", max_retries=0)


@pytest.mark.relay
@live
def test_bedrock_openai_chat_signed_invoke_and_stream(gateway, fake):
    user, client, _ = setup(gateway, fake, "aws1", f"AKIDGOOD|{SECRETS['AKIDGOOD']}|eu-central-1")
    out = client.chat.completions.create(model=MODEL, max_tokens=64, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello from Claude!" and out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (10, 5)
    sent = fake.last("AKIDGOOD")
    assert sent.path == "/model/anthropic.claude-3-5-sonnet-20241022-v2:0/invoke"
    assert sent.body == {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "system": "Be brief.", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Claude!"
    assert chunks[-1].usage.total_tokens == 15
    stream_sent = fake.last("AKIDGOOD")
    assert stream_sent.path.endswith("/invoke-with-response-stream") and "stream" not in stream_sent.body
    assert stream_sent.headers["Accept"] == "application/vnd.amazon.eventstream"
    assert fake.rejected == []
    settle()
    assert list(Log.objects.filter(user_id=user.pk).values_list("quota", "prompt_tokens", "completion_tokens")) == [(PLAIN_QUOTA, 10, 5)] * 2


@pytest.mark.relay
@live
def test_bedrock_native_messages(gateway, fake):
    user, _, ant = setup(gateway, fake, "aws2", f"AKIDGOOD|{SECRETS['AKIDGOOD']}|us-east-1")
    msg = ant.messages.create(model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "Hello from Claude!" and msg.usage.output_tokens == 5
    sent = fake.last("AKIDGOOD")
    assert sent.path == "/model/us.anthropic.claude-3-5-sonnet-20241022-v2:0/invoke"
    assert sent.body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in sent.body
    with ant.messages.stream(model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from Claude!" and final.usage.output_tokens == 5
    settle()
    assert list(Log.objects.filter(user_id=user.pk).values_list("quota", flat=True)) == [PLAIN_QUOTA, PLAIN_QUOTA]


@pytest.mark.relay
@live
def test_bedrock_wrong_secret_is_refused_by_the_signature_check(gateway, fake):
    user, client, _ = setup(gateway, fake, "aws3", "AKIDGOOD|not-the-secret|us-east-1")
    before = len(fake.rejected)
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert "signature" in str(exc.value) and len(fake.rejected) == before + 1
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000 and not Log.objects.filter(user_id=user.pk, type=2).exists()


@pytest.mark.relay
@live
def test_bedrock_stream_exception_reaches_the_client(gateway, fake):
    user, client, _ = setup(gateway, fake, "aws4", f"throttle|{SECRETS['throttle']}|us-west-2")
    resp = httpx.post(f"{gateway.v1}/chat/completions", headers={"Authorization": f"Bearer {client.api_key}"}, json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    body = resp.content
    events = [orjson.loads(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: {")]
    assert events[-1]["error"]["type"] == "throttlingException" and events[-1]["error"]["message"] == "Too many requests"
    assert any((e.get("choices") or [{}])[0].get("delta", {}).get("content") == "Hello" for e in events)
    settle()
