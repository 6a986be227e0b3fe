"""The console's account pages (users, tokens, options) and the helpers every app's admin shares.

New API's tables link rows by plain integer ids (`tokens.user_id`, `logs.channel_id`), not foreign
keys, so user columns are rendered from an annotated username and user pickers use a raw-id widget
built on an unattached ForeignKey relation.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.models import Group as AuthGroup
from django.db import models
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.models import LOG_MANAGE
from billing.services.logs import record_log

from .models import (
    ROLE_ADMIN,
    ROLE_COMMON,
    ROLE_ROOT,
    TOKEN_DISABLED,
    TOKEN_ENABLED,
    TOKEN_EXHAUSTED,
    TOKEN_EXPIRED,
    USER_DISABLED,
    USER_ENABLED,
    Option,
    Token,
    User,
    now_ts,
)
from .options import options

# Django's auth groups mean nothing here: access is the users.role column (see User.has_perm).
if admin.site.is_registered(AuthGroup):
    admin.site.unregister(AuthGroup)

admin.site.site_header = "New API console"
admin.site.site_title = "New API console"
admin.site.index_title = "Gateway administration"

ROLE_CHOICES = [(ROLE_COMMON, "common"), (ROLE_ADMIN, "admin"), (ROLE_ROOT, "root")]
USER_STATUS_CHOICES = [(USER_ENABLED, "enabled"), (USER_DISABLED, "disabled")]
TOKEN_STATUS_CHOICES = [
    (TOKEN_ENABLED, "enabled"),
    (TOKEN_DISABLED, "disabled"),
    (TOKEN_EXPIRED, "expired"),
    (TOKEN_EXHAUSTED, "exhausted"),
]
_SECRET_OPTION_SUFFIXES = ("Token", "Secret", "Key")


# -- shared helpers (also used by relay, billing and tasks admin modules) --------------------
def format_ts(ts: int | None, millis: bool = False) -> str:
    """Unix seconds (or milliseconds, for Midjourney) as a local datetime; 0/None as a dash."""
    if not ts:
        return "-"
    seconds = ts / 1000 if millis else ts
    try:
        moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return str(ts)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def quota_in_usd(quota: int | None) -> str:
    per_unit = options.get_float("QuotaPerUnit", 500000.0) or 500000.0
    return f"${(quota or 0) / per_unit:,.2f}"


def label_of(choices: Iterable[tuple[Any, str]], value: Any) -> str:
    return dict(choices).get(value, f"unknown ({value})")


def with_username(queryset: QuerySet, field: str = "user_id") -> QuerySet:
    """Annotate `username_` from users by a plain id column: one query, sortable."""
    names = User.objects.filter(pk=OuterRef(field)).values("username")[:1]
    return queryset.annotate(username_=Subquery(names))


def user_link(user_id: int | None, username: str | None) -> str:
    if not user_id:
        return "-"
    url = reverse("admin:accounts_user_change", args=[user_id])
    return format_html('<a href="{}">{}</a>', url, username or f"#{user_id} (missing)")


def user_id_widget() -> ForeignKeyRawIdWidget:
    """A raw-id picker (with the changelist popup) for a plain `user_id` column."""
    rel = models.ForeignKey(User, on_delete=models.DO_NOTHING).remote_field
    return ForeignKeyRawIdWidget(rel, admin.site)


def choices_filter(field: str, title: str, choices: list[tuple[Any, str]]) -> type[admin.SimpleListFilter]:
    """A list filter that shows labels for an integer code column without model choices."""

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            return [(str(value), label) for value, label in choices]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            if value is None:
                return queryset
            try:
                return queryset.filter(**{field: int(value)})
            except ValueError:
                return queryset.none()

    ChoicesFilter.title = title
    ChoicesFilter.__name__ = f"{field.title()}Filter"
    return ChoicesFilter


_TIME_RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def time_range_filter(field: str, title: str = "time", millis: bool = False) -> type[admin.SimpleListFilter]:
    """date_hierarchy needs a date column; New API stores Unix integers, so filter by recent windows."""

    class TimeRangeFilter(admin.SimpleListFilter):
        parameter_name = f"{field}_range"

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            return [
                ("1h", "Last hour"),
                ("24h", "Last 24 hours"),
                ("7d", "Last 7 days"),
                ("30d", "Last 30 days"),
                ("older", "Older than 30 days"),
            ]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            scale = 1000 if millis else 1
            if value in _TIME_RANGES:
                return queryset.filter(**{f"{field}__gte": (now_ts() - _TIME_RANGES[value]) * scale})
            if value == "older":
                return queryset.filter(**{f"{field}__lt": (now_ts() - _TIME_RANGES["30d"]) * scale})
            return queryset

    TimeRangeFilter.title = title
    return TimeRangeFilter


class DeletedFilter(admin.SimpleListFilter):
    """Soft-deleted rows (deleted_at set) are kept by New API; show them on request."""

    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", "No"), ("yes", "Yes")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("no", "yes"):
            return queryset.filter(deleted_at__isnull=self.value() == "no")
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the gateway itself (logs, usage, tasks): browse and search, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def save_changed_fields(obj: models.Model, form: forms.ModelForm, skip: Iterable[str] = ()) -> None:
    """Write only the columns the form changed.

    The gateway keeps updating counters (used_quota, request_count, balances, response_time) while
    a form is open; a full-row save would write the stale values back. Model.save() still runs,
    so post_save signals (cache invalidation, abilities) fire.
    """
    columns = {f.name for f in obj._meta.concrete_fields}
    names = [n for n in form.changed_data if n in columns and n not in set(skip)]
    if names:
        obj.save(update_fields=names)


def value_seen(form: forms.ModelForm, name: str) -> int:
    """The value the admin saw when the form was rendered (a field with show_hidden_initial)."""
    raw = form.data.get(form.add_initial_prefix(name))
    try:
        return int(raw)
    except (TypeError, ValueError):
        return int(form.initial.get(name) or 0)


def save_each(request: HttpRequest, modeladmin: admin.ModelAdmin, queryset: QuerySet, **changes: Any) -> int:
    """Bulk actions save row by row so post_save signals (cache invalidation, abilities) fire."""
    count = 0
    for obj in queryset:
        for name, value in changes.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(changes))
        count += 1
    modeladmin.message_user(request, f"Updated {count} row(s).", messages.SUCCESS)
    return count


# -- users -----------------------------------------------------------------------------------
class UserAdminForm(forms.ModelForm):
    # A plain text field: filled → replaces the bcrypt hash, empty on edit → keeps it.
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current password.",
    )
    role = forms.TypedChoiceField(choices=ROLE_CHOICES, coerce=int, initial=ROLE_COMMON)
    status = forms.TypedChoiceField(choices=USER_STATUS_CHOICES, coerce=int, initial=USER_ENABLED)

    class Meta:
        model = User
        fields = ["username", "display_name", "email", "password", "role", "status", "group", "quota"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["password"] = ""  # never echo the hash
        # Remember the balance the admin saw, so the save applies their change as a delta.
        if "quota" in self.fields:  # absent on a view-only page
            self.fields["quota"].show_hidden_initial = True
        self._new_password: str | None = None
        if self.instance.pk is None:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Keep the raw value away from construct_instance: only set_password may write the column.
        self._new_password = cleaned.pop("password", None) or None
        return cleaned

    def _post_clean(self) -> None:
        # Hash before model validation, which would reject a new user's blank password column.
        if self._new_password:
            self.instance.set_password(self._new_password)
        super()._post_clean()


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
        choices_filter("role", "role", ROLE_CHOICES),
        choices_filter("status", "status", USER_STATUS_CHOICES),
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
        ("Access", {"fields": ["role", "status", "group"]}),
        ("Quota", {"fields": ["quota", "quota_usd", "used_quota", "request_count"]}),
        (
            "Affiliation and linked logins",
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

    @admin.display(description="role", ordering="role")
    def role_label(self, obj: User) -> str:
        return label_of(ROLE_CHOICES, obj.role)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj: User) -> str:
        return label_of(USER_STATUS_CHOICES, obj.status)

    @admin.display(description="quota ($)", ordering="quota")
    def quota_usd(self, obj: User) -> str:
        return quota_in_usd(obj.quota)

    @admin.display(description="deleted", boolean=True, ordering="deleted_at")
    def deleted(self, obj: User) -> bool:
        return obj.deleted_at is not None

    # Admins manage users below their own role (New API's rule); root manages everyone.
    def _outranks(self, request: HttpRequest, obj: User | None) -> bool:
        return obj is None or request.user.is_superuser or obj.role < request.user.role

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._outranks(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._outranks(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "role" in form.base_fields and not request.user.is_superuser:
            # Copy: base_fields shares the declared Field object with every other request's form.
            role = copy.deepcopy(form.base_fields["role"])
            role.choices = [(v, label) for v, label in ROLE_CHOICES if v < request.user.role]
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

    @admin.action(description="Enable selected users")
    def enable_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, self._manageable(request, queryset), status=USER_ENABLED)

    @admin.action(description="Disable selected users")
    def disable_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, self._manageable(request, queryset), status=USER_DISABLED)

    def _manageable(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if request.user.is_superuser:
            return queryset
        return queryset.filter(role__lt=request.user.role)


def change_user_quota(user: User, seen: int, wanted: int) -> None:
    """Apply the admin's edit as a delta from the value they saw, through the ledger.

    A delta keeps spending that happened while the form was open, and the ledger keeps the
    Redis balance mirror in step (a plain column write would leave it stale).
    """
    from billing.services.credit import credit_user  # the ledger loads lazily, off the admin's import path

    credit_user(user.pk, wanted - seen)
    # Same wording as the /api/user edit (accounts/services/users.py), so the log reads the same.
    record_log(user.pk, LOG_MANAGE, f"管理员将用户额度从 {seen} 修改为 {wanted}", user.username)
    user.refresh_from_db(fields=["quota"])


# -- tokens ----------------------------------------------------------------------------------
class TokenAdminForm(forms.ModelForm):
    user_id = forms.IntegerField(label="User", widget=user_id_widget())
    status = forms.TypedChoiceField(choices=TOKEN_STATUS_CHOICES, coerce=int, initial=TOKEN_ENABLED)
    expired_time = forms.DateTimeField(
        label="Expires", required=False, help_text="Empty = never expires. Format: YYYY-MM-DD HH:MM:SS"
    )

    class Meta:
        model = Token
        fields = [
            "user_id",
            "name",
            "status",
            "remain_quota",
            "unlimited_quota",
            "expired_time",
            "model_limits_enabled",
            "model_limits",
            "allow_ips",
            "group",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            del self.fields["user_id"]  # the owner is fixed once issued
        if "remain_quota" in self.fields:
            self.fields["remain_quota"].show_hidden_initial = True  # see value_seen()
        expires = self.initial.get("expired_time")
        if isinstance(expires, int):
            self.initial["expired_time"] = (
                None if expires < 0 else timezone.localtime(dt.datetime.fromtimestamp(expires, tz=dt.UTC))
            )

    def clean_user_id(self) -> int:
        user_id = self.cleaned_data["user_id"]
        if not User.live.filter(pk=user_id).exists():
            raise forms.ValidationError(f"No user with id {user_id}.")
        return user_id

    def clean_expired_time(self) -> int:
        moment = self.cleaned_data.get("expired_time")
        return -1 if moment is None else int(moment.timestamp())


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
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
    search_fields = ["name", "key"]
    list_filter = [choices_filter("status", "status", TOKEN_STATUS_CHOICES), "unlimited_quota", DeletedFilter]
    ordering = ["-id"]
    actions = ["enable_tokens", "disable_tokens"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        quota = ("Quota", {"fields": ["remain_quota", "unlimited_quota", "used_quota"]})
        limits = ("Limits", {"fields": ["model_limits_enabled", "model_limits", "allow_ips"]})
        if obj is None:  # add form: the key is generated on save
            return [(None, {"fields": ["user_id", "name", "status", "expired_time", "group"]}), quota, limits]
        # A token stays with the user it was issued to: the owner is shown, not edited.
        main = ["full_key", "user_column", "name", "status", "expired_time", "group"]
        history = ("History", {"fields": ["created", "accessed", "deleted_at"]})
        return [(None, {"fields": main}), quota, limits, history]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["used_quota", "created", "accessed", "deleted_at"]
        return fields + ["full_key", "user_column"] if obj is not None else fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_username(super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # People paste keys with the sk- prefix; the column stores them without it.
        term = search_term.strip().removeprefix("sk-")
        return super().get_search_results(request, queryset, term)

    def save_model(self, request: HttpRequest, obj: Token, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.save()
            return
        save_changed_fields(obj, form, skip=["remain_quota"])
        if "remain_quota" in form.changed_data:
            # Through the ledger as a delta: the Redis mirror of a limited token stays in step.
            from billing.services.credit import credit_token

            credit_token(obj.pk, obj.key, obj.remain_quota - value_seen(form, "remain_quota"))
            obj.refresh_from_db(fields=["remain_quota"])

    @admin.display(description="user", ordering="username_")
    def user_column(self, obj: Token) -> str:
        return user_link(obj.user_id, getattr(obj, "username_", None))

    @admin.display(description="key")
    def masked_key(self, obj: Token) -> str:
        return obj.masked_key

    @admin.display(description="key (copy)")
    def full_key(self, obj: Token) -> str:
        return format_html('<code style="user-select: all">sk-{}</code>', obj.key)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj: Token) -> str:
        return label_of(TOKEN_STATUS_CHOICES, obj.status)

    @admin.display(description="expires", ordering="expired_time")
    def expiry(self, obj: Token) -> str:
        return "never" if obj.expired_time < 0 else format_ts(obj.expired_time)[:10]

    @admin.display(description="created")
    def created(self, obj: Token) -> str:
        return format_ts(obj.created_time)

    @admin.display(description="last used")
    def accessed(self, obj: Token) -> str:
        return format_ts(obj.accessed_time)

    @admin.action(description="Enable selected tokens")
    def enable_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, queryset, status=TOKEN_ENABLED)

    @admin.action(description="Disable selected tokens")
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

    @admin.display(description="value")
    def value_preview(self, obj: Option) -> str:
        if obj.key.endswith(_SECRET_OPTION_SUFFIXES) and obj.value:
            return "•••••• (secret)"
        value = obj.value or ""
        return value if len(value) <= 80 else value[:77] + "..."
