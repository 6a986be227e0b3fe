"""User and token pages: passwords through set_password, token issue, option access."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import TOKEN_DISABLED, Option, Token, User
from billing.models import LOG_MANAGE, Log
from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON, ROLE_ROOT, USER_DISABLED
from tests.admin.conftest import admin_url

pytestmark = pytest.mark.django_db


def user_form(user: User, **overrides: object) -> dict[str, object]:
    data = {
        "username": user.username,
        "display_name": user.display_name or "",
        "email": user.email or "",
        "password": "",
        "role": user.role,
        "status": user.status,
        "group": user.group,
        "quota": user.quota,
        "initial-quota": user.quota,  # the hidden "value seen" input the page renders
    }
    data.update(overrides)
    return data


def test_set_password_through_the_form(root_client: Client, alice: User) -> None:
    response = root_client.post(admin_url(User, "change", alice.pk), user_form(alice, password="n3w-Secret"))
    assert response.status_code == 302, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert alice.password.startswith("$2a$10$")
    assert alice.check_password("n3w-Secret")


def test_empty_password_keeps_the_hash(root_client: Client, alice: User) -> None:
    old_hash = alice.password
    root_client.post(admin_url(User, "change", alice.pk), user_form(alice, display_name="Alice A."))
    alice.refresh_from_db()
    assert (alice.password, alice.display_name) == (old_hash, "Alice A.")


def test_change_page_does_not_show_the_hash(root_client: Client, alice: User) -> None:
    assert alice.password not in root_client.get(admin_url(User, "change", alice.pk)).content.decode()


def test_add_user_hashes_password(root_client: Client) -> None:
    blank = User(username="carol", role=ROLE_COMMON, group="default", quota=0, display_name="")
    response = root_client.post(admin_url(User, "add"), user_form(blank, password="carol-pass"))
    assert response.status_code == 302
    carol = User.objects.get(username="carol")
    assert carol.check_password("carol-pass") and not carol.check_password("")


def test_quota_change_is_logged(root_client: Client, alice: User) -> None:
    root_client.post(admin_url(User, "change", alice.pk), user_form(alice, quota=alice.quota + 500000))
    alice.refresh_from_db()
    assert alice.quota == 10_500_000
    log = Log.objects.get(user_id=alice.pk, type=LOG_MANAGE)
    assert log.content == "管理员将用户额度从 ＄20.000000 额度修改为 ＄21.000000 额度"


def test_edit_keeps_counters_the_gateway_changed_meanwhile(root_client: Client, alice: User) -> None:
    page = root_client.get(admin_url(User, "change", alice.pk)).content.decode()
    assert f'name="initial-quota" value="{alice.quota}"' in page
    form = user_form(alice, display_name="Alice", quota=alice.quota + 1000)  # the admin opened the form
    # ... while requests are billed: the relay spends 300 and counts one request.
    User.objects.filter(pk=alice.pk).update(quota=alice.quota - 300, used_quota=300, request_count=1)
    assert root_client.post(admin_url(User, "change", alice.pk), form).status_code == 302
    alice.refresh_from_db()
    assert (alice.display_name, alice.quota, alice.used_quota, alice.request_count) == (
        "Alice",
        10_000_700,
        300,
        1,
    )


def test_token_quota_edit_is_a_delta(root_client: Client, alice: User) -> None:
    token = Token.objects.create(user_id=alice.pk, name="t", remain_quota=1000)
    data = {
        "name": "t",
        "status": "1",
        "remain_quota": "1500",
        "initial-remain_quota": "1000",
        "expired_time": "",
    }
    Token.objects.filter(pk=token.pk).update(
        remain_quota=900, used_quota=100
    )  # spent while the form was open
    assert root_client.post(admin_url(Token, "change", token.pk), data).status_code == 302
    token.refresh_from_db()
    assert (token.remain_quota, token.used_quota) == (1400, 100)


def test_quota_shown_in_dollars(root_client: Client, alice: User) -> None:
    html = root_client.get(admin_url(User, "changelist")).content.decode()
    assert "$20.00" in html  # 10 000 000 / 500 000


def test_admin_cannot_grant_root_or_admin(admin_client_: Client, alice: User) -> None:
    response = admin_client_.post(admin_url(User, "change", alice.pk), user_form(alice, role=ROLE_ROOT))
    assert response.status_code == 200  # invalid choice
    response = admin_client_.post(admin_url(User, "change", alice.pk), user_form(alice, role=ROLE_ADMIN))
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.role == ROLE_COMMON


def test_disable_action(root_client: Client, alice: User, bob: User) -> None:
    root_client.post(
        admin_url(User, "changelist"), {"action": "disable_users", "_selected_action": [alice.pk, bob.pk]}
    )
    assert set(User.objects.filter(pk__in=[alice.pk, bob.pk]).values_list("status", flat=True)) == {
        USER_DISABLED
    }


def test_token_added_in_the_console_belongs_to_the_signed_in_user(root_client: Client, root_user: User, alice: User) -> None:
    data = {
        "user_id": alice.pk,  # ignored: nobody issues a key in someone else's name
        "name": "ci",
        "status": "1",
        "expired_time": "2030-01-02 03:04:05",
        "group": "",
        "remain_quota": "1000",
        "model_limits_enabled": "on",
        "model_limits": "gpt-4o-mini",
        "allow_ips": "127.0.0.1",
    }
    response = root_client.post(admin_url(Token, "add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    token = Token.objects.get(name="ci")
    assert token.user_id == root_user.pk and len(token.key) == 48 and token.expired_time > 1_800_000_000
    assert (token.remain_quota, token.unlimited_quota, token.model_limits_enabled) == (1000, False, True)
    change = root_client.get(admin_url(Token, "change", token.pk)).content.decode()
    assert f"sk-{token.key}" in change  # the owner sees their own key
    listing = root_client.get(admin_url(Token, "changelist")).content.decode()
    assert token.key not in listing and token.masked_key in listing and "root" in listing


def test_token_never_expiring_and_edit_keeps_owner(root_client: Client, alice: User, bob: User) -> None:
    token = Token.objects.create(user_id=alice.pk, name="t", expired_time=-1)
    data = {
        "user_id": bob.pk,
        "name": "t2",
        "status": TOKEN_DISABLED,
        "remain_quota": "5",
        "expired_time": "",
    }
    response = root_client.post(admin_url(Token, "change", token.pk), data)
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.user_id, token.name, token.status, token.expired_time) == (
        alice.pk,
        "t2",
        TOKEN_DISABLED,
        -1,
    )


def test_root_edits_options(root_client: Client) -> None:
    response = root_client.post(admin_url(Option, "add"), {"key": "QuotaPerUnit", "value": "1000000"})
    assert response.status_code == 302
    from newapi_site.options import options

    options.invalidate()
    assert options.get_int("QuotaPerUnit") == 1_000_000


def test_admin_cannot_add_options(admin_client_: Client) -> None:
    response = admin_client_.post(admin_url(Option, "add"), {"key": "QuotaPerUnit", "value": "1"})
    assert response.status_code == 403
    assert not Option.objects.filter(key="QuotaPerUnit").exists()


def test_root_changes_own_password_and_stays_logged_in(root_client: Client, root_user: User) -> None:
    form = user_form(root_user, password="root-new-pass")
    response = root_client.post(admin_url(User, "change", root_user.pk), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    root_user.refresh_from_db()
    assert root_user.check_password("root-new-pass")
    assert root_client.get(admin_url(User, "changelist")).status_code == 200


def test_admin_role_limits_do_not_leak_into_root_forms(
    admin_client_: Client, root_client: Client, alice: User
) -> None:
    assert admin_client_.get(admin_url(User, "add")).status_code == 200
    response = root_client.post(admin_url(User, "change", alice.pk), user_form(alice, role=ROLE_ADMIN))
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.role == ROLE_ADMIN
