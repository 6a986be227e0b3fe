"""A multi-key channel's page: each key's status (a preview, never the key), enabling a key,
the list action that enables them all, and new keys typed into the form."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from relay.channels import multi_key
from relay.models import CHANNEL_AUTO_DISABLED, CHANNEL_ENABLED, Ability, Channel
from tests.admin.conftest import admin_url
from tests.admin.test_channels import channel_form

pytestmark = pytest.mark.django_db

KEYS = ["sk-first-secret-key-0000000001", "sk-second-secret-key-000000002"]


def multi(status_list: dict[int, int], status: int = CHANNEL_ENABLED) -> Channel:
    info = multi_key.new_info(2, "polling")
    info["multi_key_status_list"] = status_list
    info["multi_key_disabled_reason"] = dict.fromkeys(status_list, "upstream said no")
    info["multi_key_disabled_time"] = dict.fromkeys(status_list, 1_700_000_000)
    return Channel.objects.create(
        name="multi", type=1, key="\n".join(KEYS), models="gpt-4o-mini", status=status, channel_info=info
    )


def test_change_page_lists_keys_without_revealing_them(root_client: Client) -> None:
    channel = multi({1: multi_key.KEY_AUTO_DISABLED})
    html = root_client.get(admin_url(Channel, "change", channel.pk)).content.decode()
    assert "2 keys, chosen in turn per request" in html
    assert "disabled (automatically)" in html and "upstream said no" in html
    assert multi_key.preview(KEYS[1]) in html
    assert not any(k in html for k in KEYS)
    assert reverse("admin:relay_channel_enable_key", args=[channel.pk, 1]) in html
    assert reverse("admin:relay_channel_enable_key", args=[channel.pk, 0]) not in html  # enabled already


def test_enable_one_key_brings_the_channel_back(root_client: Client) -> None:
    channel = multi({0: 3, 1: 3}, status=CHANNEL_AUTO_DISABLED)
    url = reverse("admin:relay_channel_enable_key", args=[channel.pk, 0])
    assert root_client.get(url).status_code == 403  # a change: POST only
    response = root_client.post(url)
    assert response.status_code == 302
    channel.refresh_from_db()
    assert multi_key.parse_info(channel.channel_info)["multi_key_status_list"] == {1: 3}
    assert channel.status == CHANNEL_ENABLED
    assert Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()


def test_enable_all_keys_action(root_client: Client) -> None:
    channel = multi({0: 2, 1: 3})
    root_client.post(
        admin_url(Channel, "changelist"), {"action": "enable_all_keys", "_selected_action": [str(channel.pk)]}
    )
    channel.refresh_from_db()
    assert multi_key.parse_info(channel.channel_info)["multi_key_status_list"] == {}


def test_new_keys_typed_in_start_over(root_client: Client) -> None:
    channel = multi({1: 3})
    form = channel_form(type="1", key="sk-a-new-one\n\nsk-b-new-one\nsk-c-new-one", models="gpt-4o-mini")
    root_client.post(admin_url(Channel, "change", channel.pk), form)
    channel.refresh_from_db()
    info = multi_key.parse_info(channel.channel_info)
    assert channel.key == "sk-a-new-one\nsk-b-new-one\nsk-c-new-one"
    assert (info["multi_key_size"], info["multi_key_status_list"]) == (3, {})
