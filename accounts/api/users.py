"""/api/user/*: register, login, logout, self-service, access token, invitations, admin management."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from accounts import serializers as s
from accounts import sessions
from accounts.limits import check_int64
from accounts.services import groups, users
from accounts.services.email import bind_email, reset_password, send_password_reset, send_verification_code
from newapi_site.api.base import (
    ADMIN,
    PUBLIC,
    ApiView,
    body,
    int_path,
    int_value,
    ok,
    page_one_based,
    paged_envelope,
)
from newapi_site.api.ratelimit import CriticalThrottle, GlobalApiThrottle

from .turnstile import TurnstileMixin


class CriticalView(ApiView):
    throttle_classes = [GlobalApiThrottle, CriticalThrottle]


class RegisterView(TurnstileMixin, CriticalView):
    min_role = PUBLIC

    def post(self, request: Request) -> Response:
        users.register_user(s.validated(s.RegisterBody, body(request)))
        return ok()


class LoginView(TurnstileMixin, CriticalView):
    min_role = PUBLIC

    def post(self, request: Request) -> Response:
        data = s.validated(s.LoginBody, body(request))
        user = users.authenticate_user(data["username"].strip(), data["password"])
        sessions.start(request.session, user)
        return ok(s.render_login(user))


class LogoutView(ApiView):
    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        request.session.flush()
        return ok()


class SelfView(ApiView):
    def get(self, request: Request) -> Response:
        return ok(s.render_user(request.user, with_secrets=True))

    def put(self, request: Request) -> Response:
        user = users.update_self(request.user, s.validated(s.SelfUpdateBody, body(request)))
        sessions.keep_after_password_change(request.session, user)
        return ok(s.render_user(user, with_secrets=True))

    def delete(self, request: Request) -> Response:
        users.soft_delete_user(request.user)
        request.session.flush()
        return ok()


class NotificationSettingView(ApiView):
    def put(self, request: Request) -> Response:
        users.update_notification_setting(request.user, body(request))
        return ok(message="设置已更新")


class AccessTokenView(ApiView):
    def get(self, request: Request) -> Response:
        return ok(users.generate_access_token(request.user))


class AffCodeView(ApiView):
    def get(self, request: Request) -> Response:
        return ok(users.ensure_aff_code(request.user))


class AffTransferView(ApiView):
    def post(self, request: Request) -> Response:
        users.transfer_aff_quota(
            request.user, check_int64(int_value(body(request).get("quota"), "quota"), "quota")
        )
        return ok(message="划转成功")


class GroupsView(ApiView):
    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        return ok(groups.all_groups_with_ratio())


class SelfGroupsView(ApiView):
    def get(self, request: Request) -> Response:
        return ok(groups.groups_with_ratio(groups.usable_groups(request.user.group)))


# -- email ------------------------------------------------------------------------------------
class VerificationView(TurnstileMixin, CriticalView):
    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        send_verification_code(request.query_params.get("email", ""))
        return ok()


class ResetPasswordMailView(TurnstileMixin, CriticalView):
    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        send_password_reset(request.query_params.get("email", ""))
        return ok()


class ResetPasswordView(CriticalView):
    min_role = PUBLIC

    def post(self, request: Request) -> Response:
        data = body(request)
        return ok(reset_password(str(data.get("email") or ""), str(data.get("token") or "")))


class EmailBindView(CriticalView):
    def get(self, request: Request) -> Response:
        bind_email(request.user, request.query_params.get("email", ""), request.query_params.get("code", ""))
        return ok()


# -- admin ------------------------------------------------------------------------------------
class UserListView(ApiView):
    min_role = ADMIN

    def get(self, request: Request) -> Response:
        page, size = page_one_based(request)
        return ok(paged_envelope(users.all_users(), page, size, s.render_user))

    def post(self, request: Request) -> Response:
        users.create_user_by_admin(request.user, s.validated(s.AdminCreateUserBody, body(request)))
        return ok()

    def put(self, request: Request) -> Response:
        user = users.update_user_by_admin(request.user, s.validated(s.AdminUpdateUserBody, body(request)))
        sessions.keep_after_password_change(request.session, user)
        return ok(s.render_user(user))


class UserSearchView(ApiView):
    min_role = ADMIN

    def get(self, request: Request) -> Response:
        page, size = page_one_based(request)
        qs = users.search_users(
            request.query_params.get("keyword", "").strip(), request.query_params.get("group", "").strip()
        )
        return ok(paged_envelope(qs, page, size, s.render_user))


class UserDetailView(ApiView):
    min_role = ADMIN

    def get(self, request: Request, user_id: str) -> Response:
        return ok(s.render_user(users.get_user_for(request.user, int_path(user_id))))

    def delete(self, request: Request, user_id: str) -> Response:
        users.hard_delete_user(request.user, int_path(user_id))
        return ok()


class ManageUserView(ApiView):
    min_role = ADMIN

    def post(self, request: Request) -> Response:
        data = s.validated(s.ManageUserBody, body(request))
        user = users.manage_user(request.user, data["id"], data["action"])
        return ok({"role": user.role, "status": user.status})
