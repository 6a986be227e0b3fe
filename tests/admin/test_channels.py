"""Channel pages: keys stay masked, the add form builds abilities, types are validated."""

from __future__ import annotations

import pytest
from django.test import Client

from relay.models import CHANNEL_ENABLED, CHANNEL_MANUALLY_DISABLED, Ability, Channel
from tests.admin.conftest import admin_url

pytestmark = pytest.mark.django_db

SECRET = "sk-upstream-secret-0123456789abcdef"


def channel_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "deepseek-main",
        "type": "43",
        "key": "sk-deepseek-very-secret-key-000111",
        "base_url": "",
        "other": "",
        "openai_organization": "",
        "test_model": "",
        "status": "1",
        "auto_ban": "1",
        "models": "deepseek-chat, deepseek-reasoner,deepseek-chat",
        "group": "default,vip",
        "priority": "5",
        "weight": "2",
        "tag": "cn",
        "model_mapping": "",
        "status_code_mapping": "",
        "param_override": "",
        "setting": "",
        "other_info": "",
    }
    data.update(overrides)
    return data


def test_keys_never_appear_in_changelist(
    root_client: Client, admin_client_: Client, console_rows: dict
) -> None:
    for client in (root_client, admin_client_):
        html = client.get(admin_url(Channel, "changelist")).content.decode()
        assert SECRET not in html
        assert SECRET[:12] not in html
        assert "cdef" in html  # the mask keeps the last 4 characters to tell keys apart


def test_key_not_rendered_on_change_page(root_client: Client, console_rows: dict) -> None:
    channel = console_rows["channel"]
    html = root_client.get(admin_url(Channel, "change", channel.pk)).content.decode()
    assert SECRET not in html
    assert "gpt-4o-mini" in html  # the abilities table
    assert "http://127.0.0.1:9" in html  # base URL in use


def test_add_channel_builds_abilities(root_client: Client) -> None:
    response = root_client.post(admin_url(Channel, "add"), channel_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    channel = Channel.objects.get(name="deepseek-main")
    assert channel.key == "sk-deepseek-very-secret-key-000111"
    assert channel.models == "deepseek-chat,deepseek-reasoner"
    rows = set(
        Ability.objects.filter(channel_id=channel.pk).values_list(
            "group", "model", "priority", "weight", "tag"
        )
    )
    assert rows == {
        (g, m, 5, 2, "cn") for g in ("default", "vip") for m in ("deepseek-chat", "deepseek-reasoner")
    }
    page = root_client.get(admin_url(Channel, "change", channel.pk)).content.decode()
    assert "43 · DeepSeek" in page and "https://api.deepseek.com (type default)" in page


def test_edit_with_empty_key_keeps_key_and_rebuilds_abilities(
    root_client: Client, console_rows: dict
) -> None:
    channel = console_rows["channel"]
    data = channel_form(name="renamed", type="1", key="", models="gpt-4o", group="default")
    response = root_client.post(admin_url(Channel, "change", channel.pk), data)
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.key) == ("renamed", SECRET)
    assert list(Ability.objects.filter(channel_id=channel.pk).values_list("group", "model")) == [
        ("default", "gpt-4o")
    ]


def test_edit_with_new_key_replaces_it(root_client: Client, console_rows: dict) -> None:
    channel = console_rows["channel"]
    root_client.post(admin_url(Channel, "change", channel.pk), channel_form(type="1", key="  sk-new-key  "))
    channel.refresh_from_db()
    assert channel.key == "sk-new-key"


def test_unknown_type_is_a_form_error(root_client: Client) -> None:
    response = root_client.post(admin_url(Channel, "add"), channel_form(type="29"))
    assert response.status_code == 200
    assert "Unknown channel type 29" in response.content.decode()
    assert not Channel.objects.filter(name="deepseek-main").exists()


def test_bad_json_mapping_is_a_form_error(root_client: Client) -> None:
    response = root_client.post(admin_url(Channel, "add"), channel_form(model_mapping="[1, 2]"))
    assert response.status_code == 200
    assert "Must be a JSON object" in response.content.decode()


def test_add_requires_a_key(root_client: Client) -> None:
    response = root_client.post(admin_url(Channel, "add"), channel_form(key=""))
    assert response.status_code == 200
    assert not Channel.objects.exists()


def test_disable_and_enable_actions_update_abilities(root_client: Client, console_rows: dict) -> None:
    channel = console_rows["channel"]
    url = admin_url(Channel, "changelist")
    root_client.post(url, {"action": "disable_channels", "_selected_action": [channel.pk]})
    channel.refresh_from_db()
    assert channel.status == CHANNEL_MANUALLY_DISABLED
    assert not Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()
    root_client.post(url, {"action": "enable_channels", "_selected_action": [channel.pk]})
    channel.refresh_from_db()
    assert channel.status == CHANNEL_ENABLED
    assert Ability.objects.filter(channel_id=channel.pk, enabled=False).count() == 0
    assert Ability.objects.filter(channel_id=channel.pk).count() == 4


def test_delete_removes_abilities(root_client: Client, console_rows: dict) -> None:
    channel = console_rows["channel"]
    response = root_client.post(admin_url(Channel, "delete", channel.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Ability.objects.filter(channel_id=channel.pk).exists()
