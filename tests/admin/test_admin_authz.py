"""The console follows /api's rules: an admin acts only on users of a lower role, a token's full
key is shown to its owner alone (root included), nobody issues a token in someone else's name,
only root sends a stored channel key to a new endpoint or erases logs, and a form writes only
what the admin changed."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Token, User
from billing.models import Log
from newapi_site.roles import ROLE_ADMIN, ROLE_ROOT, USER_DISABLED
from relay.models import CHANNEL_AUTO_DISABLED, Channel
from tests.admin.conftest import admin_url
from tests.conftest import make_channel, make_token, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(root_user: User, admin_user: User, alice: User) -> dict[str, Token]:
    return {
        "root": make_token(root_user, name="root-key"),
        "admin": make_token(admin_user, name="admin-key"),
        "alice": make_token(alice, name="alice-key"),
        "peer": make_token(make_user("admin2", role=ROLE_ADMIN), name="peer-key"),
    }


def page(client: Client, url: str) -> str:
    response = client.get(url, follow=True)
    return response.content.decode()


# -- tokens ------------------------------------------------------------------------------------
def test_admin_sees_only_own_and_lower_tokens(admin_client_: Client, keys: dict[str, Token]) -> None:
    listing = admin_client_.get(admin_url(Token, "changelist"))
    names = {t.name for t in listing.context["cl"].result_list}
    assert names == {"admin-key", "alice-key"}
    for other in ("root", "peer"):
        html = page(admin_client_, admin_url(Token, "change", keys[other].pk))
        assert keys[other].key not in html, other
        response = admin_client_.get(admin_url(Token, "change", keys[other].pk))
        assert response.status_code == 302  # "does not exist" for them: back to the index


def test_full_key_only_for_its_owner(
    admin_client_: Client, root_client: Client, keys: dict[str, Token]
) -> None:
    own = page(admin_client_, admin_url(Token, "change", keys["admin"].pk))
    assert f"sk-{keys['admin'].key}" in own
    lower = page(admin_client_, admin_url(Token, "change", keys["alice"].pk))
    assert keys["alice"].key not in lower and keys["alice"].masked_key in lower
    # root too sees others' keys masked, and its own in full
    for name in ("alice", "admin", "peer"):
        html = page(root_client, admin_url(Token, "change", keys[name].pk))
        assert keys[name].key not in html and keys[name].masked_key in html, name
    assert f"sk-{keys['root'].key}" in page(root_client, admin_url(Token, "change", keys["root"].pk))
    listing = page(root_client, admin_url(Token, "changelist"))
    assert not any(t.key in listing for t in keys.values())


def test_no_token_is_issued_for_someone_else(
    admin_client_: Client, admin_user: User, root_user: User
) -> None:
    form = {"user_id": root_user.pk, "name": "mine", "status": "1", "remain_quota": "0", "expired_time": ""}
    add_page = page(admin_client_, admin_url(Token, "add"))
    assert 'name="user_id"' not in add_page
    assert admin_client_.post(admin_url(Token, "add"), form).status_code == 302
    token = Token.objects.get(name="mine")
    assert token.user_id == admin_user.pk
    assert not Token.objects.filter(user_id=root_user.pk).exists()


def test_admin_cannot_change_or_delete_a_higher_token(admin_client_: Client, keys: dict[str, Token]) -> None:
    root_key = keys["root"]
    form = {"name": "hijacked", "status": "2", "remain_quota": "0", "expired_time": ""}
    admin_client_.post(admin_url(Token, "change", root_key.pk), form)
    admin_client_.post(admin_url(Token, "delete", root_key.pk), {"post": "yes"})
    admin_client_.post(
        admin_url(Token, "changelist"), {"action": "disable_tokens", "_selected_action": [root_key.pk]}
    )
    root_key.refresh_from_db()
    assert (root_key.name, root_key.status, root_key.deleted_at) == ("root-key", 1, None)
    # a lower user's token is theirs to manage
    form = {"name": "renamed", "status": "1", "remain_quota": "0", "expired_time": ""}
    assert admin_client_.post(admin_url(Token, "change", keys["alice"].pk), form).status_code == 302
    keys["alice"].refresh_from_db()
    assert keys["alice"].name == "renamed"


def test_key_search_matches_whole_keys_only(root_client: Client, keys: dict[str, Token]) -> None:
    key = keys["alice"].key

    def found(term: str) -> set[str]:
        response = root_client.get(admin_url(Token, "changelist"), {"q": term})
        return {t.name for t in response.context["cl"].result_list}

    assert found(key[:8]) == set() and found("sk-" + key[:-1]) == set() and found(key[1:]) == set()
    assert found("sk-" + key) == {"alice-key"} and found(key) == {"alice-key"}
    assert found("alice") == {"alice-key"}


# -- users -------------------------------------------------------------------------------------
def test_admin_lists_and_manages_only_lower_users(
    admin_client_: Client, admin_user: User, root_user: User, alice: User
) -> None:
    peer = make_user("admin2", role=ROLE_ADMIN)
    listing = admin_client_.get(admin_url(User, "changelist"))
    assert {u.username for u in listing.context["cl"].result_list} == {"admin1", "alice"}
    for higher in (root_user, peer):
        assert admin_client_.get(admin_url(User, "change", higher.pk)).status_code == 302
        admin_client_.post(admin_url(User, "delete", higher.pk), {"post": "yes"})
        admin_client_.post(admin_url(User, "changelist"), {"action": "disable_users", "_selected_action": [higher.pk]})
        higher.refresh_from_db()
        assert higher.status == 1
    assert User.objects.filter(pk__in=[root_user.pk, peer.pk]).count() == 2
    # their own row: view-only (no quota of their own making)
    own = admin_client_.get(admin_url(User, "change", admin_user.pk))
    assert own.status_code == 200 and b'name="quota"' not in own.content


def test_deleting_a_user_takes_their_tokens(admin_client_: Client, alice: User) -> None:
    make_token(alice)
    assert admin_client_.post(admin_url(User, "delete", alice.pk), {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=alice.pk).exists()
    assert not Token.objects.filter(user_id=alice.pk).exists()


def test_root_is_never_deleted_from_the_console(root_client: Client) -> None:
    other_root = make_user("root2", role=ROLE_ROOT)
    root_client.post(admin_url(User, "delete", other_root.pk), {"post": "yes"})
    assert User.objects.filter(pk=other_root.pk).exists()


def test_user_form_keeps_a_ban_made_while_it_was_open(root_client: Client, alice: User) -> None:
    seen = {
        "username": alice.username, "display_name": "Alice", "email": "", "password": "",
        "role": alice.role, "status": alice.status, "group": alice.group, "quota": alice.quota,
    }
    form = {**seen, **{f"initial-{k}": v for k, v in seen.items() if k != "password"}}
    form["display_name"] = "Alice Z."
    User.objects.filter(pk=alice.pk).update(status=USER_DISABLED, group="vip")  # another admin, meanwhile
    assert root_client.post(admin_url(User, "change", alice.pk), form).status_code == 302
    alice.refresh_from_db()
    assert (alice.display_name, alice.status, alice.group) == ("Alice Z.", USER_DISABLED, "vip")


# -- channels ----------------------------------------------------------------------------------
def _channel_form(channel: Channel, **changes: str) -> dict[str, str]:
    seen = {
        "name": channel.name, "type": str(channel.type), "key": "", "base_url": channel.base_url or "",
        "other": channel.other or "", "openai_organization": "", "test_model": "", "status": str(channel.status),
        "auto_ban": "1", "models": channel.models, "group": channel.group, "priority": "0", "weight": "0",
        "tag": "", "model_mapping": "", "status_code_mapping": "", "param_override": "", "setting": "",
        "other_info": "",
    }
    form = {**seen, **{f"initial-{k}": v for k, v in seen.items() if k != "key"}}
    form.update(changes)
    return form


def test_admin_cannot_send_a_stored_key_elsewhere(admin_client_: Client, root_client: Client) -> None:
    channel = make_channel("http://127.0.0.1:9", key="sk-stored-secret-0123456789", name="c")
    url = admin_url(Channel, "change", channel.pk)
    for change in ({"base_url": "http://attacker.example"}, {"type": "14"}):
        response = admin_client_.post(url, _channel_form(channel, **change))
        assert response.status_code == 200 and b"Only root may change" in response.content, change
    channel.refresh_from_db()
    assert (channel.base_url, channel.type) == ("http://127.0.0.1:9", 1)
    # with a key of their own the move is fine
    form = _channel_form(channel, base_url="http://mine.example", key="sk-my-own-key-0123456789")
    assert admin_client_.post(url, form).status_code == 302
    channel.refresh_from_db()
    assert (channel.base_url, channel.key) == ("http://mine.example", "sk-my-own-key-0123456789")
    # root moves it keeping the key
    assert root_client.post(url, _channel_form(channel, base_url="http://root.example")).status_code == 302
    channel.refresh_from_db()
    assert (channel.base_url, channel.key) == ("http://root.example", "sk-my-own-key-0123456789")


def test_channel_form_keeps_an_auto_disable_made_while_it_was_open(admin_client_: Client) -> None:
    channel = make_channel("http://127.0.0.1:9", name="c")
    form = _channel_form(channel, name="renamed")
    Channel.objects.filter(pk=channel.pk).update(status=CHANNEL_AUTO_DISABLED)  # the relay, meanwhile
    assert admin_client_.post(admin_url(Channel, "change", channel.pk), form).status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.status) == ("renamed", CHANNEL_AUTO_DISABLED)


# -- logs --------------------------------------------------------------------------------------
def test_only_root_deletes_logs(admin_client_: Client, root_client: Client, alice: User) -> None:
    log = Log.objects.create(user_id=alice.pk, username="alice", type=2, content="x")
    assert admin_client_.get(admin_url(Log, "delete", log.pk)).status_code == 403
    admin_client_.post(admin_url(Log, "delete", log.pk), {"post": "yes"})
    assert Log.objects.filter(pk=log.pk).exists()
    assert admin_client_.get(admin_url(Log, "change", log.pk)).status_code == 200  # reading is fine
    assert root_client.post(admin_url(Log, "delete", log.pk), {"post": "yes"}).status_code == 302
    assert not Log.objects.filter(pk=log.pk).exists()
