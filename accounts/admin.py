"""The console's account pages (users, tokens, options).

The console follows the rules of /api: an admin acts only on users of a lower role (and on their
own tokens), root on everyone; a token's full key is shown to its owner alone, and tokens are
issued from here only to the signed-in user. Shared helpers live in newapi_site/admin_common.py;
balance edits go through billing's ledger by way of accounts.balance.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.models import Group as AuthGroup
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from newapi_site.admin_common import (
    DeletedFilter,
    choices_filter,
    compare_with_seen,
    format_ts,
    label_of,
    may_act_on,
    owner_role,
    quota_in_usd,
    save_changed_fields,
    save_each,
    user_link,
    value_seen,
    with_owner_role,
    with_username,
)
from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON, ROLE_ROOT, USER_DISABLED, USER_ENABLED

from . import balance
from .models import TOKEN_DISABLED, TOKEN_ENABLED, TOKEN_EXHAUSTED, TOKEN_EXPIRED, Option, Token, User


def _actor(request: HttpRequest) -> User:
    """The signed-in admin: every console view runs behind the admin site's login check."""
    return cast(User, request.user)


# Django's auth groups mean nothing here: access is the users.role column (see User.has_perm).
if admin.site.is_registered(AuthGroup):
    admin.site.unregister(AuthGroup)

admin.site.site_header = _("New API console")
admin.site.site_title = _("New API console")
admin.site.index_title = _("Gateway administration")

ROLE_CHOICES = [(ROLE_COMMON, _("common user")), (ROLE_ADMIN, _("admin")), (ROLE_ROOT, _("root"))]
USER_STATUS_CHOICES = [(USER_ENABLED, _("enabled")), (USER_DISABLED, _("disabled"))]
TOKEN_STATUS_CHOICES = [
    (TOKEN_ENABLED, _("enabled")),
    (TOKEN_DISABLED, _("disabled")),
    (TOKEN_EXPIRED, _("expired")),
    (TOKEN_EXHAUSTED, _("exhausted")),
]
_SECRET_OPTION_SUFFIXES = ("Token", "Secret", "Key")


# -- users -----------------------------------------------------------------------------------
class UserAdminForm(forms.ModelForm):
    # A plain text field: filled → replaces the bcrypt hash, empty on edit → keeps it.
    password = forms.CharField(
        label=capfirst(_("password")),
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Leave empty to keep the current password."),
    )
    role = forms.TypedChoiceField(
        label=capfirst(_("role")), choices=ROLE_CHOICES, coerce=int, initial=ROLE_COMMON
    )
    status = forms.TypedChoiceField(
        label=capfirst(_("status")), choices=USER_STATUS_CHOICES, coerce=int, initial=USER_ENABLED
    )

    class Meta:
        model = User
        fields = ["username", "display_name", "email", "password", "role", "status", "group", "quota"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["password"] = ""  # never echo the hash
        # Remember what the admin saw: only their changes are written (a ban or charge made
        # meanwhile is kept), and the balance moves by the delta they typed.
        compare_with_seen(self, skip=["password"])
        self._new_password: str | None = None
        if self.instance.pk is None:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""

    def clean(self) -> dict[str, Any]:
        cleaned = cast(dict[str, Any], super().clean())  # ModelForm.clean returns cleaned_data
        # Keep the raw value away from construct_instance: only set_password may write the column.
        self._new_password = cleaned.pop("password", None) or None
        return cleaned

    def _post_clean(self) -> None:
        # Hash before model validation, which would reject a new user's blank password column.
        if self._new_password:
            self.instance.set_password(self._new_password)
        super()._post_clean()  # type: ignore[misc]  # private Django hook, not in the stubs


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    form = UserAdminForm
    list_display = [
        "id",
        "username",
        "display_name",
        "role_label",
        "status_label",
        "group",
        "quota",
        "quota_usd",
        "used_quota",
        "request_count",
        "deleted",
    ]
    list_display_links = ["id", "username"]
    search_fields = ["username", "email", "display_name"]
    list_filter = [
        choices_filter("role", _("role"), ROLE_CHOICES),
        choices_filter("status", _("status"), USER_STATUS_CHOICES),
        "group",
        DeletedFilter,
    ]
    ordering = ["-id"]
    actions = ["enable_users", "disable_users"]
    readonly_fields = [
        "used_quota",
        "request_count",
        "quota_usd",
        "aff_code",
        "aff_count",
        "aff_quota",
        "aff_history",
        "inviter_id",
        "github_id",
        "oidc_id",
        "wechat_id",
        "telegram_id",
        "linux_do_id",
        "deleted_at",
    ]
    fieldsets = [
        (None, {"fields": ["username", "display_name", "email", "password"]}),
        (_("Access"), {"fields": ["role", "status", "group"]}),
        (_("Quota"), {"fields": ["quota", "quota_usd", "used_quota", "request_count"]}),
        (
            _("Invitations and linked logins"),
            {
                "classes": ["collapse"],
                "fields": [
                    "aff_code",
                    "aff_count",
                    "aff_quota",
                    "aff_history",
                    "inviter_id",
                    "github_id",
                    "oidc_id",
                    "wechat_id",
                    "telegram_id",
                    "linux_do_id",
                    "deleted_at",
                ],
            },
        ),
    ]

    @admin.display(description=_("role"), ordering="role")
    def role_label(self, obj: User) -> str:
        return label_of(ROLE_CHOICES, obj.role)

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, obj: User) -> str:
        return label_of(USER_STATUS_CHOICES, obj.status)

    @admin.display(description=_("remaining quota ($)"), ordering="quota")
    def quota_usd(self, obj: User) -> str:
        return quota_in_usd(obj.quota)

    @admin.display(description=_("deleted"), boolean=True, ordering="deleted_at")
    def deleted(self, obj: User) -> bool:
        return obj.deleted_at is not None

    # Admins manage users below their own role (New API's rule) and see themselves; root manages
    # everyone. Nobody deletes a root account (/api refuses it too).
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(Q(role__lt=_actor(request).role) | Q(pk=request.user.pk))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = obj is None or may_act_on(request.user, obj.role, obj.pk)
        return super().has_view_permission(request, obj) and allowed

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = obj is None or may_act_on(request.user, obj.role)
        return super().has_change_permission(request, obj) and allowed

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = obj is None or (obj.role < ROLE_ROOT and may_act_on(request.user, obj.role))
        return super().has_delete_permission(request, obj) and allowed

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        # As DELETE /api/user/:id: the user's tokens go with it (post_delete drops their caches).
        Token.objects.filter(user_id=obj.pk).delete()
        obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in self._manageable(request, queryset).exclude(role__gte=ROLE_ROOT):
            self.delete_model(request, user)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "role" in form.base_fields and not request.user.is_superuser:
            # Copy: base_fields shares the declared Field object with every other request's form.
            role = cast(forms.ChoiceField, copy.deepcopy(form.base_fields["role"]))
            role.choices = [(v, label) for v, label in ROLE_CHOICES if v < _actor(request).role]
            form.base_fields["role"] = role
        return form

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.save()
            return
        save_changed_fields(obj, form, skip=["quota"])
        if obj.pk == request.user.pk and "password" in form.changed_data:
            update_session_auth_hash(request, obj)  # changing your own password keeps you logged in
        if "quota" in form.changed_data:
            change_user_quota(obj, value_seen(form, "quota"), obj.quota)

    @admin.action(description=_("Enable selected users"))
    def enable_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, self._manageable(request, queryset), status=USER_ENABLED)

    @admin.action(description=_("Disable selected users"))
    def disable_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        root = self._manageable(request, queryset).exclude(role__gte=ROLE_ROOT)  # as /api: never root
        save_each(request, self, root, status=USER_DISABLED)

    def _manageable(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if request.user.is_superuser:
            return queryset
        return queryset.filter(role__lt=_actor(request).role)


def change_user_quota(user: User, seen: int, wanted: int) -> None:
    """Apply the admin's edit as a delta from the value they saw, through the ledger.

    A delta keeps spending that happened while the form was open, and the ledger keeps the
    Redis balance mirror in step (a plain column write would leave it stale).
    """
    keeper = balance.keeper()
    keeper.credit_user(user.pk, wanted - seen)
    keeper.log_quota_edit(user.pk, user.username, seen, wanted)
    user.refresh_from_db(fields=["quota"])


# -- tokens ----------------------------------------------------------------------------------
class TokenAdminForm(forms.ModelForm):
    status = forms.TypedChoiceField(
        label=capfirst(_("status")), choices=TOKEN_STATUS_CHOICES, coerce=int, initial=TOKEN_ENABLED
    )
    expired_time = forms.DateTimeField(
        label=capfirst(_("expires")),
        required=False,
        help_text=_("Empty = never expires. Format: YYYY-MM-DD HH:MM:SS"),
    )

    class Meta:
        model = Token
        fields = [
            "name",
            "status",
            "remain_quota",
            "unlimited_quota",
            "budget_period",
            "budget_quota",
            "expired_time",
            "model_limits_enabled",
            "model_limits",
            "allow_ips",
            "group",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        expires = self.initial.get("expired_time")
        if isinstance(expires, int):
            self.initial["expired_time"] = (
                None if expires < 0 else timezone.localtime(dt.datetime.fromtimestamp(expires, tz=dt.UTC))
            )
        if self.instance.pk is not None:
            compare_with_seen(self)  # see value_seen(): the balance edit is a delta from what was shown

    def clean_expired_time(self) -> int:
        moment = self.cleaned_data.get("expired_time")
        return -1 if moment is None else int(moment.timestamp())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("budget_period"):
            if not (data.get("budget_quota") or 0) > 0:
                self.add_error("budget_quota", _("A budget needs a positive quota."))
            if data.get("unlimited_quota"):
                self.add_error("unlimited_quota", _("A token with a budget is limited."))
        else:
            data["budget_period"], data["budget_quota"] = None, None
        return data


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    """Tokens of the signed-in user and of users below their role (all of them for root).

    A key is shown in full to its owner only; everyone else sees the mask. A token is issued here
    only to the signed-in user (as POST /api/token/): nobody mints a key in someone else's name.
    """

    form = TokenAdminForm
    list_display = [
        "name",
        "user_column",
        "masked_key",
        "status_label",
        "remain_quota",
        "unlimited_quota",
        "used_quota",
        "expiry",
        "group",
    ]
    list_display_links = ["name"]
    search_fields = ["name"]  # and an exact key: see get_search_results
    search_help_text = _("Token name, or a whole key (sk-…).")
    list_filter = [
        choices_filter("status", _("status"), TOKEN_STATUS_CHOICES),
        "unlimited_quota",
        DeletedFilter,
    ]
    ordering = ["-id"]
    actions = ["enable_tokens", "disable_tokens"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        quota = (
            _("Quota"),
            {
                "fields": ["remain_quota", "unlimited_quota", "used_quota", "budget_period", "budget_quota"],
                "description": _(
                    "A budget sets the remaining quota back to the budget at the start of every UTC "
                    "day, ISO week or month."
                ),
            },
        )
        limits = (_("Limits"), {"fields": ["model_limits_enabled", "model_limits", "allow_ips"]})
        if obj is None:  # add form: the key is generated on save, for the signed-in user
            return [(None, {"fields": ["name", "status", "expired_time", "group"]}), quota, limits]
        # A token stays with the user it was issued to: the owner is shown, not edited.
        main = [self._key_field(request, obj), "user_column", "name", "status", "expired_time", "group"]
        history = (_("History"), {"fields": ["created", "accessed", "deleted_at"]})
        return [(None, {"fields": main}), quota, limits, history]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["used_quota", "created", "accessed", "deleted_at"]
        return [*fields, self._key_field(request, obj), "user_column"] if obj is not None else fields

    @staticmethod
    def _key_field(request: HttpRequest, obj: Token) -> str:
        return "full_key" if obj.user_id == request.user.pk else "masked_key"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = with_owner_role(with_username(super().get_queryset(request)))
        if request.user.is_superuser:
            return qs
        return qs.filter(Q(user_id=request.user.pk) | Q(owner_role__lt=_actor(request).role))

    def _may_act(self, request: HttpRequest, obj: Token | None) -> bool:
        return obj is None or may_act_on(request.user, owner_role(obj), obj.user_id)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self._may_act(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_act(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_act(request, obj)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # Names match in part, keys only whole: a partial key match would let anyone who may
        # list a token guess its key a few characters at a time.
        results, duplicates = super().get_search_results(request, queryset, search_term)
        key = search_term.strip().removeprefix("sk-")
        if key:
            results = results | queryset.filter(key=key)
        return results, duplicates

    def save_model(self, request: HttpRequest, obj: Token, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.user_id = _actor(request).pk
            obj.save()
            return
        save_changed_fields(obj, form, skip=["remain_quota"])
        if "remain_quota" in form.changed_data:
            # Through the ledger as a delta: the Redis mirror of a limited token stays in step.
            delta = obj.remain_quota - value_seen(form, "remain_quota")
            balance.keeper().credit_token(obj.pk, obj.key, delta, user_id=obj.user_id)
            obj.refresh_from_db(fields=["remain_quota"])

    @admin.display(description=_("user"), ordering="username_")
    def user_column(self, obj: Token) -> str:
        return user_link(obj.user_id, getattr(obj, "username_", None))

    @admin.display(description=_("key"))
    def masked_key(self, obj: Token) -> str:
        return obj.masked_key

    @admin.display(description=_("key (copy)"))
    def full_key(self, obj: Token) -> str:
        return format_html('<code style="user-select: all">sk-{}</code>', obj.key)

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, obj: Token) -> str:
        return label_of(TOKEN_STATUS_CHOICES, obj.status)

    @admin.display(description=_("expires"), ordering="expired_time")
    def expiry(self, obj: Token) -> str:
        return gettext("never") if obj.expired_time < 0 else format_ts(obj.expired_time)[:10]

    @admin.display(description=_("created"))
    def created(self, obj: Token) -> str:
        return format_ts(obj.created_time)

    @admin.display(description=_("last used"))
    def accessed(self, obj: Token) -> str:
        return format_ts(obj.accessed_time)

    @admin.action(description=_("Enable selected tokens"))
    def enable_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, queryset, status=TOKEN_ENABLED)

    @admin.action(description=_("Disable selected tokens"))
    def disable_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, queryset, status=TOKEN_DISABLED)


# -- options ---------------------------------------------------------------------------------
@admin.register(Option)
class OptionAdmin(admin.ModelAdmin):
    """Root only (User.has_perm refuses option permissions to admins). A save publishes "options"."""

    list_display = ["key", "value_preview"]
    search_fields = ["key", "value"]
    ordering = ["key"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["key"] if obj is not None else []

    @admin.display(description=_("value"))
    def value_preview(self, obj: Option) -> str:
        if obj.key.endswith(_SECRET_OPTION_SUFFIXES) and obj.value:
            return gettext("•••••• (secret)")
        value = obj.value or ""
        return value if len(value) <= 80 else value[:77] + "..."
