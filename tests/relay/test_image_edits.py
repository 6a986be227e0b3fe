"""Image edits and variations (multipart) through the real gateway with the openai SDK: the form
and files re-sent upstream with the mapped model, the answer passed through, billed per image
like generations; bad or sensitive requests refused before anything is charged or sent."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from billing.models import Log
from newapi_site.options import update_option
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.modes_upstream import FakeModes

pytestmark = [live, pytest.mark.relay]

PNG = b"\x89PNG\r\n\x1a\n" + b"fake-image-bytes" * 8
MASK = b"\x89PNG\r\n\x1a\n" + b"fake-mask"


@pytest.fixture(scope="module")
def fake() -> FakeModes:
    return FakeModes().start()


def client_for(gateway, name: str):
    user = make_user(name, quota=10_000_000)
    token = make_token(user)
    return user, token, openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)


def test_edit_forwards_the_form_and_bills_per_image(gateway, fake):
    make_channel(fake.base_url, key="edit", models="dall-e-2")
    user, _token, client = client_for(gateway, "ie1")
    out = client.images.edit(image=("cat.png", PNG, "image/png"), mask=("mask.png", MASK, "image/png"), prompt="add a hat", n=2, size="512x512")
    assert [d.url for d in out.data] == ["https://img.example/edit-0.png", "https://img.example/edit-1.png"]
    sent = fake.last("edit")
    assert sent.path == "/v1/images/edits" and sent.headers["Authorization"] == "Bearer edit"
    assert sent.body == {
        "model": "dall-e-2", "prompt": "add a hat", "n": "2", "size": "512x512",
        "image": {"filename": "cat.png", "size": len(PNG)}, "mask": {"filename": "mask.png", "size": len(MASK)},
    }
    assert fake.files["edit"]["image"]["data"] == PNG and fake.files["edit"]["image"]["content_type"] == "image/png"
    settle()
    log = Log.objects.get(user_id=user.pk)
    # dall-e-2 has no ModelPrice: $0.0025 × ratio 10 × size 512 0.45 × n 2 × 500000 = 11250
    assert (log.quota, log.prompt_tokens, log.content, log.model_name) == (11250, 2, "大小 512x512", "dall-e-2")
    user.refresh_from_db()
    assert user.quota == 10_000_000 - 11250


def test_variation_sends_the_mapped_model(gateway, fake):
    make_channel(fake.base_url, key="vary", models="dall-e-2", model_mapping=json.dumps({"dall-e-2": "dall-e-2-eu"}))
    user, _token, client = client_for(gateway, "iv1")
    out = client.images.create_variation(image=("dog.png", PNG, "image/png"))
    assert [d.url for d in out.data] == ["https://img.example/variation-0.png"]
    sent = fake.last("vary")
    assert sent.path == "/v1/images/variations"
    assert sent.body == {"model": "dall-e-2-eu", "image": {"filename": "dog.png", "size": len(PNG)}}
    settle()
    log = Log.objects.get(user_id=user.pk)
    assert (log.quota, log.content) == (12500, "大小 1024x1024")  # $0.0025 × 10 × size 1 × n 1 × 500000
    assert json.loads(log.other)["upstream_model_name"] == "dall-e-2-eu"
    user.refresh_from_db()
    assert user.quota == 10_000_000 - 12500


def test_azure_edit_goes_to_the_deployment(gateway, fake):
    make_channel(fake.base_url, key="az-img", type=3, other="2024-06-01", models="dall-e-2")
    _user, _token, client = client_for(gateway, "ia1")
    out = client.images.edit(image=("cat.png", PNG, "image/png"), prompt="add a hat")
    assert out.data[0].url == "https://img.example/edit-0.png"
    sent = fake.last("az-img")
    assert sent.path == "/openai/deployments/dall-e-2/images/edits" and sent.query == "api-version=2024-06-01"
    assert "Authorization" not in sent.headers and sent.body["prompt"] == "add a hat"


def test_bad_requests_charge_nothing(gateway, fake):
    make_channel(fake.base_url, key="edit-bad", models="dall-e-2")
    user, token, client = client_for(gateway, "ie2")
    before = len(fake.requests)
    r = httpx.post(
        f"{gateway.v1}/images/edits",
        headers={"Authorization": f"Bearer sk-{token.key}"},
        data={"model": "dall-e-2", "n": "1"},
        files={"image": ("cat.png", PNG, "image/png")},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_image_request" and "prompt" in r.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        client.images.edit(image=("cat.png", PNG, "image/png"), prompt="x", size="1792x1024")
    assert exc.value.body["code"] == "invalid_image_request"
    with pytest.raises(openai.BadRequestError):
        client.images.create_variation(image=("cat.png", PNG, "image/png"), n=11)
    r = httpx.post(f"{gateway.v1}/images/variations", headers={"Authorization": f"Bearer sk-{token.key}"}, json={"model": "dall-e-2"})
    assert r.status_code == 400
    assert len(fake.requests) == before
    settle()
    user.refresh_from_db()
    assert user.quota == 10_000_000 and not Log.objects.filter(user_id=user.pk).exists()


def test_sensitive_prompt_is_refused(gateway, fake):
    make_channel(fake.base_url, key="edit-sens", models="dall-e-2")
    user, _token, client = client_for(gateway, "ie3")
    update_option("SensitiveWords", "secret-plan")
    update_option("CheckSensitiveOnPromptEnabled", "true")
    propagated()
    try:
        with pytest.raises(openai.BadRequestError) as exc:
            client.images.edit(image=("cat.png", PNG, "image/png"), prompt="draw the SECRET-PLAN")
        assert exc.value.body["code"] == "sensitive_words_detected"
    finally:
        update_option("SensitiveWords", "test_sensitive")
        propagated()
    assert not fake.requests or fake.requests[-1].key != "edit-sens"
    settle()
    user.refresh_from_db()
    assert user.quota == 10_000_000
