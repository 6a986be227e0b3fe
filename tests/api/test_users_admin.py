"""Admin user management: list/search/get/create/update/manage/delete and the role rules."""

from __future__ import annotations

from accounts.models import User
from billing.models import Log
from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON
from tests.conftest import make_user


def test_list_envelope_and_pagination(as_admin, alice, bob):
    for i in range(3):
        make_user(f"u{i}")
    body = as_admin.get("/api/user/", {"p": 1, "page_size": 2})
    data = body["data"]
    assert set(data) == {"items", "total", "page", "page_size"}
    assert data["total"] == User.objects.count() and data["page"] == 1 and data["page_size"] == 2
    ids = list(User.objects.order_by("-id").values_list("id", flat=True))
    assert [u["id"] for u in data["items"]] == ids[:2]
    assert [u["id"] for u in as_admin.get("/api/user/", {"p": 2, "page_size": 2})["data"]["items"]] == ids[2:4]
    assert as_admin.get("/api/user/")["data"]["page_size"] == 10
    assert all(u["password"] == "" and u["access_token"] == "" for u in data["items"])


def test_list_includes_soft_deleted(as_admin, alice):
    from tests.api_client import Api

    Api(alice).delete("/api/user/self")
    items = as_admin.get("/api/user/")["data"]["items"]
    row = next(u for u in items if u["id"] == alice.pk)
    assert row["DeletedAt"] is not None


def test_search(as_admin, alice, bob):
    assert [u["id"] for u in as_admin.get("/api/user/search", {"keyword": "ali"})["data"]["items"]] == [alice.pk]
    assert [u["id"] for u in as_admin.get("/api/user/search", {"keyword": str(bob.pk)})["data"]["items"]] == [bob.pk]
    by_group = as_admin.get("/api/user/search", {"keyword": "", "group": "vip"})["data"]["items"]
    assert [u["id"] for u in by_group] == [bob.pk]


def test_get_respects_roles(as_admin, as_root, alice, admin_user, root_user):
    assert as_admin.get(f"/api/user/{alice.pk}")["data"]["username"] == "alice"
    assert as_admin.get(f"/api/user/{root_user.pk}")["success"] is False
    other_admin = make_user("admin2", role=ROLE_ADMIN)
    assert as_admin.get(f"/api/user/{other_admin.pk}")["success"] is False
    assert as_root.get(f"/api/user/{other_admin.pk}")["success"] is True
    assert as_admin.get("/api/user/999999")["success"] is False


def test_create(as_admin):
    assert as_admin.post("/api/user/", {"username": "newbie", "password": "password1", "role": 10})["success"] is False
    assert as_admin.post("/api/user/", {"username": "newbie", "password": "password1"})["success"]
    user = User.objects.get(username="newbie")
    assert user.role == ROLE_COMMON and user.check_password("password1")
    assert as_admin.post("/api/user/", {"username": "newbie", "password": "password1"})["success"] is False


def test_update_quota_goes_through_ledger_and_logs(as_admin, alice):
    body = as_admin.put("/api/user/", {"id": alice.pk, "username": "alice", "display_name": "A", "group": "vip",
                                       "quota": 12_345})
    assert body["success"], body
    alice.refresh_from_db()
    assert (alice.quota, alice.group, alice.display_name) == (12_345, "vip", "A")
    log = Log.objects.get(user_id=alice.pk, type=3)
    # New API's wording: amounts in money (500,000 quota = $1), six decimals
    assert log.content == "管理员将用户额度从 ＄20.000000 额度修改为 ＄0.024690 额度"


def test_update_ignores_role_and_refuses_peers(as_admin, alice, root_user):
    as_admin.put("/api/user/", {"id": alice.pk, "role": 100, "status": 2, "quota": alice.quota})
    alice.refresh_from_db()
    assert alice.role == ROLE_COMMON and alice.status == 1
    assert as_admin.put("/api/user/", {"id": root_user.pk, "quota": 1})["success"] is False


def test_manage_actions(as_admin, as_root, alice, root_user):
    body = as_admin.post("/api/user/manage", {"id": alice.pk, "action": "disable"})
    assert body == {"success": True, "message": "", "data": {"role": 1, "status": 2}}
    assert as_admin.post("/api/user/manage", {"id": alice.pk, "action": "enable"})["data"]["status"] == 1
    assert as_admin.post("/api/user/manage", {"id": alice.pk, "action": "promote"})["success"] is False
    assert as_root.post("/api/user/manage", {"id": alice.pk, "action": "promote"})["data"]["role"] == 10
    # alice is now an admin: a fellow admin cannot touch her, root can
    assert as_admin.post("/api/user/manage", {"id": alice.pk, "action": "demote"})["success"] is False
    assert as_root.post("/api/user/manage", {"id": alice.pk, "action": "demote"})["data"]["role"] == 1
    for action in ("disable", "delete", "demote"):
        assert as_root.post("/api/user/manage", {"id": root_user.pk, "action": action})["success"] is False
    assert as_admin.post("/api/user/manage", {"id": alice.pk, "action": "explode"})["success"] is False
    assert as_admin.post("/api/user/manage", {"id": alice.pk, "action": "delete"})["success"]
    assert User.objects.get(pk=alice.pk).deleted_at is not None


def test_hard_delete(as_admin, alice, root_user):
    from tests.conftest import make_token

    make_token(alice)
    assert as_admin.delete(f"/api/user/{alice.pk}")["success"] is True
    assert not User.objects.filter(pk=alice.pk).exists()
    assert as_admin.delete(f"/api/user/{root_user.pk}")["success"] is False


def test_groups_models_endpoints(as_alice, anon, as_admin, fake_upstream):
    from tests.conftest import make_channel

    make_channel(fake_upstream.base_url, key="k1", models="gpt-4o-mini,gpt-4o", group="default")
    make_channel(fake_upstream.base_url, key="k2", models="claude-3", group="svip")
    assert set(anon.get("/api/user/groups")["data"]) == {"default", "vip", "svip"}
    mine = as_alice.get("/api/user/self/groups")["data"]
    assert mine == {"default": {"ratio": 1, "desc": "默认分组"}, "vip": {"ratio": 1, "desc": "vip分组"}}
    assert as_alice.get("/api/user/models")["data"] == ["gpt-4o", "gpt-4o-mini"]
    assert as_admin.get("/api/group/")["data"] == ["default", "vip", "svip"]
    models = as_alice.get("/api/models")["data"]
    assert "gpt-4o" in models["1"] and all(m.startswith("claude") for m in models["14"])
    pricing = anon.get("/api/pricing")
    assert pricing["success"] and "message" not in pricing
    names = {p["model_name"] for p in pricing["data"]}
    assert names == {"gpt-4o-mini", "gpt-4o", "claude-3"}
    row = next(p for p in pricing["data"] if p["model_name"] == "gpt-4o")
    assert row["quota_type"] == 0 and row["enable_groups"] == ["default"] and row["owner_by"] == ""
    assert set(pricing["usable_group"]) == {"default", "vip"}
