"""Automatic channel disabling on fatal upstream errors, seen through the real gateway."""

from __future__ import annotations

import json

import openai
import pytest

from newapi_site.option_defaults import DEFAULT_OPTIONS
from newapi_site.options import update_option
from relay.models import Ability, Channel
from tests.conftest import live, make_channel, make_token, make_user, propagated

pytestmark = [live, pytest.mark.relay]


@pytest.fixture
def auto_disable():
    update_option("AutomaticDisableChannelEnabled", "true")
    propagated()
    yield
    update_option("AutomaticDisableChannelEnabled", "false")
    update_option("AutomaticDisableKeywords", DEFAULT_OPTIONS["AutomaticDisableKeywords"])
    propagated()


def chat(gateway, token):
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_401_disables_channel_everywhere(gateway, fake_upstream, auto_disable):
    before = len(fake_upstream.requests_for("status-401"))  # the fake is shared by the whole session
    channel = make_channel(fake_upstream.base_url, key="status-401")
    token = make_token(make_user("hx"))
    with pytest.raises(openai.AuthenticationError):
        chat(gateway, token)
    channel.refresh_from_db()
    assert channel.status == 3
    info = json.loads(channel.other_info)
    assert info["status_reason"] == "fake upstream says 401" and info["status_time"] > 0
    assert not Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()
    with pytest.raises(openai.APIStatusError) as exc:
        chat(gateway, token)
    assert exc.value.status_code == 503  # no channel left: the gateway stopped choosing it at once
    assert len(fake_upstream.requests_for("status-401")) == before + 1


def test_keyword_match_and_auto_ban_off(gateway, fake_upstream, auto_disable):
    update_option("AutomaticDisableKeywords", "Credit balance\nFAKE UPSTREAM SAYS 403")
    keep = make_channel(fake_upstream.base_url, key="status-403", auto_ban=0, name="keep")
    propagated()
    token = make_token(make_user("hy"))
    with pytest.raises(openai.APIStatusError):
        chat(gateway, token)
    keep.refresh_from_db()
    assert keep.status == 1  # auto_ban off: never disabled
    Channel.objects.filter(pk=keep.pk).delete()
    hit = make_channel(fake_upstream.base_url, key="status-403", name="hit")
    with pytest.raises(openai.APIStatusError):
        chat(gateway, token)
    hit.refresh_from_db()
    assert hit.status == 3


def test_keyword_at_a_non_auth_status_disables_nothing(gateway, fake_upstream, auto_disable):
    """Only an auth/billing status lets a message keyword speak for the channel."""
    update_option("AutomaticDisableKeywords", "FAKE UPSTREAM SAYS 502")
    channel = make_channel(fake_upstream.base_url, key="status-502", name="five-oh-two")
    propagated()
    with pytest.raises(openai.APIStatusError):
        chat(gateway, make_token(make_user("hw")))
    channel.refresh_from_db()
    assert channel.status == 1


def test_nothing_happens_when_option_off(gateway, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="status-401")
    token = make_token(make_user("hz"))
    with pytest.raises(openai.AuthenticationError):
        chat(gateway, token)
    channel.refresh_from_db()
    assert channel.status == 1
