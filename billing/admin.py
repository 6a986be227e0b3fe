"""The console's billing pages: logs and usage rollups (read-only), redemption codes, top-ups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.models import ADDITION
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from newapi_site import audit
from newapi_site.admin_common import (
    DeletedFilter,
    ReadOnlyAdmin,
    choices_filter,
    format_ts,
    quota_in_usd,
    save_changed_fields,
    save_each,
    time_range_filter,
    user_link,
    with_username,
)
from newapi_site.api.base import ApiError

from .models import (
    LOG_CONSUME,
    LOG_MANAGE,
    LOG_SYSTEM,
    LOG_TOPUP,
    LOG_UNKNOWN,
    REDEMPTION_DISABLED,
    REDEMPTION_ENABLED,
    REDEMPTION_USED,
    Log,
    QuotaData,
    Redemption,
    TopUp,
)
from .redemption import create_redemptions

if TYPE_CHECKING:
    from accounts.models import User

# A context: "top-up" alone names the top-up records (充值记录), as a log type it is 充值.
LOG_TYPE_CHOICES = [
    (LOG_UNKNOWN, pgettext_lazy("log type", "unknown")),
    (LOG_TOPUP, pgettext_lazy("log type", "top-up")),
    (LOG_CONSUME, pgettext_lazy("log type", "consume")),
    (LOG_MANAGE, pgettext_lazy("log type", "manage")),
    (LOG_SYSTEM, pgettext_lazy("log type", "system")),
]
REDEMPTION_STATUS_CHOICES = [
    (REDEMPTION_ENABLED, _("unused")),
    (REDEMPTION_DISABLED, _("disabled")),
    (REDEMPTION_USED, _("redeemed")),
]


@admin.register(Log)
class LogAdmin(ReadOnlyAdmin):
    """Every admin reads the logs (as GET /api/log/); only root erases them (as DELETE /api/log/)."""

    list_display = [
        "created",
        "type_label",
        "username",
        "token_name",
        "model_name",
        "prompt_tokens",
        "completion_tokens",
        "quota",
        "use_time",
        "is_stream",
        "channel_id",
        "group",
    ]
    list_filter = [
        time_range_filter("created_at"),
        choices_filter("type", _("type"), LOG_TYPE_CHOICES),
        "is_stream",
        "model_name",
    ]
    search_fields = ["username", "token_name", "model_name", "content"]
    ordering = ["-id"]
    show_full_result_count = False  # COUNT(*) over a large logs table on every search is slow
    fields = [
        "created",
        "type_label",
        "user_id",
        "username",
        "token_id",
        "token_name",
        "model_name",
        "group",
        "channel_id",
        "channel_name",
        "prompt_tokens",
        "completion_tokens",
        "quota",
        "quota_usd",
        "use_time",
        "is_stream",
        "content",
        "other",
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    @admin.display(description=_("time"), ordering="created_at")
    def created(self, obj: Log) -> str:
        return format_ts(obj.created_at)

    @admin.display(description=_("type"), ordering="type")
    def type_label(self, obj: Log) -> str:
        return str(dict(LOG_TYPE_CHOICES).get(obj.type, obj.type))

    @admin.display(description=_("quota ($)"))
    def quota_usd(self, obj: Log) -> str:
        return quota_in_usd(obj.quota)


@admin.register(QuotaData)
class QuotaDataAdmin(ReadOnlyAdmin):
    list_display = ["hour", "user_column", "model_name", "count", "token_used", "quota", "quota_usd"]
    list_filter = [time_range_filter("created_at", _("hour")), "model_name"]
    search_fields = ["username", "model_name"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_username(super().get_queryset(request))

    @admin.display(description=_("hour"), ordering="created_at")
    def hour(self, obj: QuotaData) -> str:
        return format_ts(obj.created_at)[:16]

    @admin.display(description=_("user"), ordering="username")
    def user_column(self, obj: QuotaData) -> str:
        return user_link(obj.user_id, getattr(obj, "username_", None) or obj.username)

    @admin.display(description=_("quota ($)"))
    def quota_usd(self, obj: QuotaData) -> str:
        return quota_in_usd(obj.quota)


# -- redemption codes ---------------------------------------------------------------------------
class CreateCodesForm(forms.Form):
    name = forms.CharField(label=capfirst(_("name")), min_length=1, max_length=20)
    count = forms.IntegerField(label=capfirst(_("count")), min_value=1, max_value=100, initial=1)
    quota = forms.IntegerField(
        label=capfirst(_("quota")),
        min_value=1,
        initial=500000,
        help_text=_("Quota units per code (500000 = $1)."),
    )


class RedemptionAdminForm(forms.ModelForm):
    status = forms.TypedChoiceField(
        label=capfirst(_("status")), choices=REDEMPTION_STATUS_CHOICES, coerce=int
    )

    class Meta:
        model = Redemption
        fields = ["name", "quota", "status"]


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    form = RedemptionAdminForm
    list_display = [
        "id",
        "name",
        "key",
        "status_label",
        "quota",
        "quota_usd",
        "created",
        "redeemed_by",
        "redeemed",
    ]
    list_display_links = ["id", "name"]
    list_filter = [choices_filter("status", _("status"), REDEMPTION_STATUS_CHOICES), DeletedFilter]
    search_fields = ["name", "key"]
    ordering = ["-id"]
    actions = ["enable_codes", "disable_codes"]
    readonly_fields = ["key", "quota_usd", "created", "redeemed_by", "redeemed", "deleted_at"]
    fields = [
        "key",
        "name",
        "quota",
        "quota_usd",
        "status",
        "created",
        "redeemed_by",
        "redeemed",
        "deleted_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_username(super().get_queryset(request), "used_user_id")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A redeemed code is history: reopening it would let it be redeemed twice.
        if obj is not None and obj.status == REDEMPTION_USED:
            return [*self.readonly_fields, "name", "quota", "status"]
        return list(self.readonly_fields)

    # Codes are made in batches with a generated key; the plain add form would need a typed key.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "create-codes/",
                self.admin_site.admin_view(self.create_codes_view),
                name="billing_redemption_create_codes",
            )
        ]
        return extra + super().get_urls()

    def create_codes_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("billing.add_redemption"):
            raise PermissionDenied
        keys: list[str] = []
        form = CreateCodesForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                keys = create_redemptions(
                    cast("User", request.user), data
                )  # the same service as POST /api/redemption/
            except ApiError as exc:
                form.add_error(None, exc.message)
            else:
                ids = list(
                    Redemption.objects.filter(key__in=keys).order_by("id").values_list("id", flat=True)
                )
                audit.record(request, Redemption, "create_codes", flag=ADDITION, count=len(keys), ids=ids)
                created = ngettext(
                    "Created %(n)d code worth %(worth)s.",
                    "Created %(n)d codes worth %(worth)s each.",
                    len(keys),
                ) % {"n": len(keys), "worth": quota_in_usd(data["quota"])}
                self.message_user(request, created)
                form = CreateCodesForm(initial=data)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Create redemption codes"),
            "form": form,
            "keys": keys,
            "changelist_url": reverse("admin:billing_redemption_changelist"),
        }
        return TemplateResponse(request, "admin/billing/redemption/create_codes.html", context)

    def save_model(self, request: HttpRequest, obj: Redemption, form: forms.ModelForm, change: bool) -> None:
        save_changed_fields(obj, form)  # never write back a stale status over a concurrent redemption

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, obj: Redemption) -> str:
        return str(dict(REDEMPTION_STATUS_CHOICES).get(obj.status, obj.status))

    @admin.display(description=_("quota ($)"), ordering="quota")
    def quota_usd(self, obj: Redemption) -> str:
        return quota_in_usd(obj.quota)

    @admin.display(description=_("created"), ordering="created_time")
    def created(self, obj: Redemption) -> str:
        return format_ts(obj.created_time)

    @admin.display(description=_("redeemed by"), ordering="used_user_id")
    def redeemed_by(self, obj: Redemption) -> str:
        return user_link(obj.used_user_id, getattr(obj, "username_", None))

    @admin.display(description=_("redeemed at"), ordering="redeemed_time")
    def redeemed(self, obj: Redemption) -> str:
        return format_ts(obj.redeemed_time)

    @admin.action(description=_("Enable selected codes (unused ones only)"))
    def enable_codes(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, queryset.exclude(status=REDEMPTION_USED), status=REDEMPTION_ENABLED)

    @admin.action(description=_("Disable selected codes (unused ones only)"))
    def disable_codes(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, queryset.exclude(status=REDEMPTION_USED), status=REDEMPTION_DISABLED)


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    """Online payment orders. Read-only: a status edit here would not credit the user."""

    list_display = ["id", "created", "user_column", "amount", "money", "trade_no", "status"]
    list_filter = ["status", time_range_filter("create_time")]
    search_fields = ["trade_no"]
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_username(super().get_queryset(request))

    @admin.display(description=_("created"), ordering="create_time")
    def created(self, obj: TopUp) -> str:
        return format_ts(obj.create_time)

    @admin.display(description=_("user"), ordering="username_")
    def user_column(self, obj: TopUp) -> str:
        return user_link(obj.user_id, getattr(obj, "username_", None))


def _warn_of_dead_letters(site: admin.AdminSite) -> None:
    """Root sees on the console's index how many settlements the database refused (billing/writer.py)."""
    from django.contrib import messages

    from .writer import dead_letter_count, dead_letter_key

    index_view = site.index

    def index(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.user.is_active and request.user.is_superuser:
            try:
                count = dead_letter_count()
            except Exception:  # Redis down: the page still opens
                count = 0
            if count:
                text = gettext(
                    "%(count)d billing settlements were refused by the database and set aside "
                    "in the Redis list %(key)s (see the server log)."
                ) % {"count": count, "key": dead_letter_key()}
                messages.warning(request, text)
        return index_view(request, extra_context)

    site.index = index  # type: ignore[method-assign,assignment]


_warn_of_dead_letters(admin.site)
