"""Every console page opens for root; admins see all but options; common users get nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.admin.conftest import ALL_MODELS, admin_url

pytestmark = pytest.mark.django_db


def test_root_opens_every_changelist_and_change_page(root_client: Client, console_rows: dict) -> None:
    assert root_client.get("/admin/").status_code == 200
    for name, model in ALL_MODELS.items():
        listing = root_client.get(admin_url(model, "changelist"))
        assert listing.status_code == 200, name
        row = console_rows[name]
        change = root_client.get(admin_url(model, "change", row.pk))
        assert change.status_code == 200, name


def test_console_header(root_client: Client) -> None:
    assert b"New API console" in root_client.get("/admin/").content


def test_admin_opens_everything_but_options(admin_client_: Client, console_rows: dict) -> None:
    for name, model in ALL_MODELS.items():
        listing = admin_client_.get(admin_url(model, "changelist"))
        change = admin_client_.get(admin_url(model, "change", console_rows[name].pk))
        expected = 403 if name == "option" else 200
        assert (listing.status_code, change.status_code) == (expected, expected), name


def test_admin_cannot_edit_root(admin_client_: Client, root_user) -> None:
    page = admin_client_.get(admin_url(type(root_user), "change", root_user.pk))
    # View-only at most: no editable password field for a higher role.
    assert b'name="password"' not in page.content


def test_common_user_gets_no_access(alice_client: Client, console_rows: dict) -> None:
    index = alice_client.get("/admin/")
    assert index.status_code == 302 and "/admin/login/" in index["Location"]
    for name, model in ALL_MODELS.items():
        response = alice_client.get(admin_url(model, "changelist"))
        assert response.status_code == 302, name
        assert "/admin/login/" in response["Location"]


def test_filters_and_searches_render(root_client: Client, console_rows: dict) -> None:
    queries = {
        "log": "?type=2&is_stream__exact=0&created_at_range=30d&q=gpt",
        "token": "?status=1&unlimited_quota__exact=1&q=sk-" + console_rows["token"].key,  # whole keys only
        "channel": "?type=1&status=1&group=vip&q=gpt-4o",
        "user": "?role=1&status=1&q=ali&deleted=no",
        "task": "?platform=suno&status=SUCCESS&action=MUSIC",
        "midjourney": "?status=SUCCESS&submit_time_range=older",
        "redemption": "?status=1&q=welcome&deleted=no",
    }
    for name, query in queries.items():
        response = root_client.get(admin_url(ALL_MODELS[name], "changelist") + query)
        assert response.status_code == 200, name
        assert response.context["cl"].result_count == 1, name


def test_soft_deleted_filter(root_client: Client, console_rows: dict) -> None:
    from django.utils import timezone

    alice = console_rows["user"]
    alice.deleted_at = timezone.now()
    alice.save()
    response = root_client.get(admin_url(ALL_MODELS["user"], "changelist") + "?deleted=yes")
    assert [u.username for u in response.context["cl"].result_list] == ["alice"]


def test_auth_groups_are_not_in_the_console(root_client: Client) -> None:
    from django.contrib import admin
    from django.contrib.auth.models import Group

    assert not admin.site.is_registered(Group)
