"""Vertex AI (type 41) through the real gateway: a service-account key (generated RSA key) turned
into an access token at a fake token server that verifies the JWT signature, the token cached,
Claude via rawPredict/streamRawPredict and Gemini via generateContent on the region from
channel.other, native /v1/messages, and a service account whose signature is refused."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from billing.models import Log
from relay.adaptors.vertex import claude_model, region_for
from relay.channels.tester import test_channel_sync
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.vertex_upstream import FakeVertex

CLAUDE = "claude-3-5-sonnet-20241022"
GEMINI = "gemini-2.0-flash"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def fake() -> FakeVertex:
    return FakeVertex().start()


def service_account(
    fake: FakeVertex, email: str, key: rsa.RSAPrivateKey | None = None, register: bool = True
) -> str:
    key = key or new_key()
    if register:
        fake.public_keys[email] = key.public_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "proj-1",
            "private_key_id": "kid-1",
            "private_key": pem,
            "client_email": email,
            "client_id": "1",
            "token_uri": f"{fake.base_url}/token",
        }
    )


def clients(gateway, name: str):
    user = make_user(name, quota=1_000_000)
    token = make_token(user)
    return (
        user,
        openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0),
        anthropic.Anthropic(base_url=gateway.url, api_key=f"sk-{token.key}", max_retries=0),
    )


def test_region_and_model_names():
    assert region_for("", CLAUDE) == "us-central1"
    assert region_for("europe-west4", CLAUDE) == "europe-west4"
    assert region_for('{"default": "us-east5", "gemini-2.0-flash": "europe-west1"}', GEMINI) == "europe-west1"
    assert region_for('{"default": "us-east5"}', CLAUDE) == "us-east5"
    assert claude_model(CLAUDE) == "claude-3-5-sonnet-v2@20241022"
    assert claude_model("claude-3-opus-20240229") == "claude-3-opus@20240229"
    assert claude_model("claude-3-haiku@20240307") == "claude-3-haiku@20240307"


@pytest.mark.relay
@live
def test_vertex_claude_and_gemini_with_one_cached_token(gateway, fake):
    sa = service_account(fake, "relay1@proj-1.iam.gserviceaccount.com")
    make_channel(
        fake.base_url,
        key=sa,
        name="vertex-1",
        type=41,
        models=f"{CLAUDE},{GEMINI}",
        other=json.dumps({"default": "us-east5", GEMINI: "europe-west1"}),
    )
    user, client, _ = clients(gateway, "vx1")
    grants = len(fake.token_grants)
    out = client.chat.completions.create(
        model=CLAUDE, max_tokens=40, messages=[{"role": "user", "content": "hi"}]
    )
    assert out.choices[0].message.content == "Hello from Claude!" and out.usage.total_tokens == 15
    sent = fake.last()
    assert (
        sent.path
        == "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet-v2@20241022:rawPredict"
    )
    assert sent.body == {
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 40,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    chunks = list(
        client.chat.completions.create(
            model=CLAUDE, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Claude!"
    assert (
        fake.last().path.endswith(":streamRawPredict")
        and fake.last().query == "alt=sse"
        and fake.last().body["stream"] is True
    )
    out = client.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello from Gemini!" and out.usage.total_tokens == 12
    assert (
        fake.last().path
        == f"/v1/projects/proj-1/locations/europe-west1/publishers/google/models/{GEMINI}:generateContent"
    )
    assert fake.last().body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    chunks = list(
        client.chat.completions.create(
            model=GEMINI, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Gemini!"
    assert fake.last().path.endswith(":streamGenerateContent")
    # four requests, one token: the grant is cached
    assert len(fake.token_grants) == grants + 1
    grant = fake.token_grants[-1]
    assert grant["header"] == {"alg": "RS256", "typ": "JWT", "kid": "kid-1"}
    assert grant["claims"]["iss"] == "relay1@proj-1.iam.gserviceaccount.com"
    settle()
    assert list(
        Log.objects.filter(user_id=user.pk).order_by("id").values_list("prompt_tokens", "completion_tokens")
    ) == [(10, 5), (10, 5), (8, 4), (8, 4)]


@pytest.mark.relay
@live
def test_vertex_native_messages(gateway, fake):
    sa = service_account(fake, "relay2@proj-1.iam.gserviceaccount.com")
    make_channel(fake.base_url, key=sa, name="vertex-2", type=41, models=CLAUDE, other="us-east5")
    user, _, ant = clients(gateway, "vx2")
    msg = ant.messages.create(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "Hello from Claude!"
    assert fake.last().body["anthropic_version"] == "vertex-2023-10-16" and "model" not in fake.last().body
    with ant.messages.stream(
        model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Hello from Claude!"
    settle()
    assert Log.objects.filter(user_id=user.pk).count() == 2


@pytest.mark.relay
@live
def test_vertex_refused_signature_fails_without_charge(gateway, fake):
    email = "relay3@proj-1.iam.gserviceaccount.com"
    fake.public_keys[email] = new_key().public_key()  # registered key ≠ the channel's private key
    make_channel(
        fake.base_url,
        key=service_account(fake, email, register=False),
        name="vertex-3",
        type=41,
        models=CLAUDE,
    )
    user, client, _ = clients(gateway, "vx3")
    refusals = fake.token_refusals
    with pytest.raises(openai.AuthenticationError) as exc:
        client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}])
    assert "Invalid JWT Signature" in str(exc.value) and fake.token_refusals == refusals + 1
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000


@pytest.mark.django_db
def test_channel_test_fetches_the_token_like_a_relayed_request(fake):
    sa = service_account(fake, "tester@proj-1.iam.gserviceaccount.com")
    channel = make_channel(
        fake.base_url, key=sa, name="vertex-test", type=41, models=GEMINI, other="europe-west1"
    )
    grants = len(fake.token_grants)
    result = test_channel_sync(channel.pk)
    assert result.success, result.message
    assert len(fake.token_grants) == grants + 1
    assert (
        fake.last().path
        == f"/v1/projects/proj-1/locations/europe-west1/publishers/google/models/{GEMINI}:generateContent"
    )
