"""Images, text-to-speech and rerank through the real gateway, with exact upstream requests and billing."""

from __future__ import annotations

import httpx
import openai
import pytest

from billing.models import Log
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.modes_upstream import AUDIO, FakeModes

pytestmark = [live, pytest.mark.relay]


@pytest.fixture(scope="module")
def fake() -> FakeModes:
    return FakeModes().start()


def user_token(name: str):
    user = make_user(name, quota=10_000_000)
    return user, make_token(user)


def test_images_priced_per_image_size_quality(gateway, fake):
    make_channel(fake.base_url, key="img", models="dall-e-3,dall-e-2")
    user, token = user_token("im1")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    out = client.images.generate(model="dall-e-3", prompt="a cat", n=2, size="1024x1792", quality="hd")
    assert [d.url for d in out.data] == ["https://img.example/0.png", "https://img.example/1.png"]
    assert fake.last("img").body == {"model": "dall-e-3", "prompt": "a cat", "n": 2, "size": "1024x1792", "quality": "hd"}
    settle()
    log = Log.objects.get(user_id=user.pk)
    # $0.04 × size 2 × hd-tall 1.5 × n 2 = $0.24 × 500000
    assert (log.quota, log.prompt_tokens, log.content) == (120_000, 2, "大小 1024x1792, 品质 hd")
    user.refresh_from_db()
    assert user.quota == 10_000_000 - 120_000
    with pytest.raises(openai.BadRequestError) as exc:
        client.images.generate(model="dall-e-2", prompt="a cat", size="1792x1024")
    assert exc.value.body["code"] == "invalid_image_request"
    settle()
    user.refresh_from_db()
    assert user.quota == 10_000_000 - 120_000


def test_speech_billed_per_character(gateway, fake):
    make_channel(fake.base_url, key="tts", models="tts-1")
    user, token = user_token("sp1")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    audio = client.audio.speech.create(model="tts-1", voice="alloy", input="hello world")
    assert audio.content == AUDIO
    assert fake.last("tts").body == {"model": "tts-1", "voice": "alloy", "input": "hello world"}
    settle()
    assert Log.objects.get(user_id=user.pk).quota == 83  # 11 chars × 7.5 = 82.5 → 83


@pytest.mark.parametrize(
    "ctype,key,prompt",
    [(38, "jina", 300), (34, "cohere", None), (40, "silicon", 200), (1, "openai-rr", 300)],
)
def test_rerank_normalised(gateway, fake, ctype, key, prompt):
    make_channel(fake.base_url, key=key, type=ctype, models="jina-reranker-v2-base-multilingual")
    user, token = user_token(f"rr{ctype}")
    docs = ["short", "a much longer document", "medium doc"]
    r = httpx.post(
        f"{gateway.v1}/rerank",
        headers={"Authorization": f"Bearer sk-{token.key}"},
        json={"model": "jina-reranker-v2-base-multilingual", "query": "which is long?", "documents": docs, "top_n": 2, "return_documents": True},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["index"] for x in out["results"]] == [1, 2]
    assert out["results"][0]["relevance_score"] == 0.9
    assert out["results"][0]["document"] in ({"text": "a much longer document"}, "a much longer document")
    sent = fake.last(key)
    assert sent.path == "/v1/rerank" and sent.headers["Authorization"] == f"Bearer {key}"
    assert sent.body["query"] == "which is long?" and sent.body["top_n"] == 2
    settle()
    log = Log.objects.get(user_id=user.pk)
    if prompt is None:  # Cohere bills search units: we count the prompt ourselves
        assert log.prompt_tokens > 0 and out["usage"]["prompt_tokens"] == log.prompt_tokens
    else:
        assert log.prompt_tokens == prompt == out["usage"]["prompt_tokens"]


def test_rerank_validation(gateway, fake):
    make_channel(fake.base_url, key="jina", type=38, models="jina-reranker-v2-base-multilingual")
    user, token = user_token("rrv")
    headers = {"Authorization": f"Bearer sk-{token.key}"}
    r = httpx.post(f"{gateway.v1}/rerank", headers=headers, json={"model": "jina-reranker-v2-base-multilingual", "query": "", "documents": ["a"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_query"
    r = httpx.post(f"{gateway.v1}/rerank", headers=headers, json={"model": "jina-reranker-v2-base-multilingual", "query": "q", "documents": []})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_documents"
    settle()
    user.refresh_from_db()
    assert user.quota == 10_000_000


def test_cohere_chat(gateway, fake):
    make_channel(fake.base_url, key="cohere", type=34, models="command-r")
    user, token = user_token("co1")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]
    out = client.chat.completions.create(model="command-r", messages=messages, max_tokens=20)
    assert out.choices[0].message.content == "Hello from Cohere!" and out.usage.prompt_tokens == 9
    sent = fake.last("cohere")
    assert sent.path == "/v1/chat"
    assert sent.body == {
        "model": "command-r", "message": "second", "stream": False, "max_tokens": 20,
        "chat_history": [{"role": "SYSTEM", "message": "Be brief."}, {"role": "USER", "message": "first"}, {"role": "CHATBOT", "message": "ok"}],
    }
    chunks = list(client.chat.completions.create(model="command-r", messages=messages, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Cohere!"
    assert chunks[-1].usage.completion_tokens == 3
    settle()
    # command-r: ratio 0.25, completion ratio 3: (9 + 3×3) × 0.25 = 4.5 → 5
    assert list(Log.objects.filter(user_id=user.pk).values_list("quota", flat=True)) == [5, 5]


def test_dify_chat(gateway, fake):
    make_channel(fake.base_url, key="dify", type=37, models="gpt-4o-mini")
    user, token = user_token("df1")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    out = client.chat.completions.create(model="gpt-4o-mini", messages=messages, user="u-7")
    assert out.choices[0].message.content == "Hello from Dify!" and out.usage.total_tokens == 20
    sent = fake.last("dify")
    assert sent.path == "/v1/chat-messages"
    assert sent.body == {"inputs": {}, "query": "SYSTEM: \nBe brief.\nUSER: \nhi\n", "response_mode": "blocking", "user": "u-7", "files": [], "auto_generate_name": False}
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Dify!"
    notes = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices)
    assert notes == "Workflow: wf1 [running]\nNode: llm [succeeded]\n"
    assert fake.last("dify").body["response_mode"] == "streaming"
    settle()
    assert list(Log.objects.filter(user_id=user.pk).values_list("prompt_tokens", "completion_tokens")) == [(14, 6), (14, 6)]


def test_transcription_billed_per_minute(gateway, fake):
    import io
    import wave

    make_channel(fake.base_url, key="stt", models="whisper-1")
    user, token = user_token("st1")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:  # 61 s of silence at 1 kHz, 8-bit mono
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(1000)
        w.writeframes(b"\x80" * 61_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    out = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", buf.getvalue(), "audio/wav"), language="en")
    assert out.text == "hello from whisper"
    sent = fake.last("stt")
    assert sent.path == "/v1/audio/transcriptions"
    assert sent.body == {"model": "whisper-1", "language": "en", "response_format": "json", "file": {"filename": "a.wav", "size": len(buf.getvalue())}}
    settle()
    log = Log.objects.get(user_id=user.pk)
    # ceil(61 s) / 60 × 1000 = 1016.67 → 1017 tokens × ratio 15
    assert (log.prompt_tokens, log.quota) == (1017, 15_255)
