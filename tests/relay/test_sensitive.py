"""Sensitive words (relay.md §12) through the real gateway: refused with 400
sensitive_words_detected before anything is reserved or sent; image parts, embeddings and a
disabled check pass; the matcher itself on its own."""

from __future__ import annotations

import httpx
import pytest

from newapi_site.options import update_option
from relay import sensitive
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle

pytestmark = [live, pytest.mark.relay]


@pytest.fixture
def words():
    update_option("SensitiveWords", "Forbidden Fruit\n  secret-plan  \n\n")
    propagated()
    yield
    update_option("SensitiveWords", "test_sensitive")
    update_option("CheckSensitiveOnPromptEnabled", "true")
    propagated()


def post(gateway, key: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway.v1}{path}", headers={"Authorization": f"Bearer sk-{key}"}, json=body, timeout=20)


def test_matcher_is_case_insensitive_and_follows_the_option(words):
    assert sensitive.find(["we eat FORBIDDEN fruit today"]) == "forbidden fruit"
    assert sensitive.find(["the Secret-Plan"]) == "secret-plan"
    assert sensitive.find(["forbidden", "fruit"]) is None
    assert sensitive.texts_for("chat", {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "secret-plan"}}]}]}) == ["a"]


def test_prompts_with_sensitive_words_are_refused_without_charge(gateway, fake_upstream, words):
    make_channel(fake_upstream.base_url, key="sens", models="gpt-4o-mini,text-embedding-3-small,gpt-3.5-turbo-instruct,text-moderation-stable")
    user = make_user("sens1", quota=1_000_000)
    key = make_token(user).key
    before = len(fake_upstream.requests_for("sens"))
    refused = [
        ("/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "tell me the SECRET-PLAN"}]}),
        ("/chat/completions", {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": "forbidden fruit?"}]}]}),
        ("/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": ["ok", "Forbidden Fruit"]}),
        ("/moderations", {"input": "a secret-plan"}),
        ("/images/generations", {"model": "dall-e-3", "prompt": "paint the forbidden fruit"}),
        ("/audio/speech", {"model": "tts-1", "input": "read the secret-plan", "voice": "alloy"}),
    ]
    for path, body in refused:
        r = post(gateway, key, path, body)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["code"] == "sensitive_words_detected" and r.json()["error"]["message"].startswith("sensitive words detected")
    assert len(fake_upstream.requests_for("sens")) == before
    # not checked: image parts, embeddings; plain prompts pass
    image_part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,secret-plan", "detail": "low"}}
    ok = [
        ("/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, image_part]}]}),
        ("/embeddings", {"model": "text-embedding-3-small", "input": "secret-plan"}),
    ]
    for path, body in ok:
        assert post(gateway, key, path, body).status_code == 200, path
    settle()
    user.refresh_from_db()
    from billing.models import Log

    assert Log.objects.filter(user_id=user.pk).count() == 2


def test_check_can_be_switched_off(gateway, fake_upstream, words):
    make_channel(fake_upstream.base_url, key="sens-off")
    user = make_user("sens2", quota=1_000_000)
    update_option("CheckSensitiveOnPromptEnabled", "false")
    propagated()
    r = post(gateway, make_token(user).key, "/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "secret-plan"}]})
    assert r.status_code == 200
    settle()
