"""The console's channel pages.

Keys are secrets: lists show a mask, the change form has a write-only key field (empty = keep).
Sending a stored key somewhere else (a new type, base URL or Vertex region) is root's alone; an
admin may do it only with a new key of their own (as PUT /api/channel/). Every change goes through
Channel.save() so relay/channels/signals.py rebuilds abilities and tells the gateway processes to reload.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from newapi_site.admin_common import (
    choices_filter,
    compare_with_seen,
    format_ts,
    label_of,
    quota_in_usd,
    save_each,
)
from newapi_site.api.base import ApiError
from relay.adaptors.registry import CHANNEL_TYPE_CHOICES, channel_type_name, effective_base_url
from relay.admin_keys import MultiKeyAdminMixin, rekeyed
from relay.api.services import check_endpoint_change, endpoint_changes, save_channel_fields
from relay.channels import limits
from relay.channels.tester import test_channel_sync
from relay.models import CHANNEL_AUTO_DISABLED, CHANNEL_ENABLED, CHANNEL_MANUALLY_DISABLED, Ability, Channel

CHANNEL_STATUS_CHOICES: list[tuple[int, Any]] = [
    (CHANNEL_ENABLED, _("enabled")),
    (CHANNEL_MANUALLY_DISABLED, _("disabled (manually)")),
    (CHANNEL_AUTO_DISABLED, _("disabled (automatically)")),
]
_JSON_OBJECT_FIELDS = ("model_mapping", "status_code_mapping", "setting", "param_override")


def mask_key(key: str | None) -> str:
    """Enough to tell keys apart, never enough to use one: the last 4 characters of long keys."""
    lines = [line for line in (key or "").splitlines() if line.strip()]
    if not lines:
        return "-"
    first = lines[0].strip()
    tail = first[-4:] if len(first) >= 16 else ""
    extra = len(lines) - 1
    more = gettext(" (+%(n)d more)") % {"n": extra} if extra else ""
    return f"••••{tail}{more}"


class ChannelAdminForm(forms.ModelForm):
    type = forms.TypedChoiceField(
        label=capfirst(_("type")),
        choices=CHANNEL_TYPE_CHOICES,
        coerce=int,
        initial=1,
        error_messages={
            "invalid_choice": _("Unknown channel type %(value)s: choose one of New API's channel types.")
        },
    )
    status = forms.TypedChoiceField(
        label=capfirst(_("status")), choices=CHANNEL_STATUS_CHOICES, coerce=int, initial=CHANNEL_ENABLED
    )
    # Write-only: the stored key is never rendered into the page.
    key = forms.CharField(
        label=capfirst(_("key")),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_("Write-only. Leave empty to keep the current key."),
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "type",
            "key",
            "base_url",
            "other",
            "openai_organization",
            "test_model",
            "status",
            "auto_ban",
            "models",
            "group",
            "priority",
            "weight",
            "tag",
            "model_mapping",
            "status_code_mapping",
            "param_override",
            "setting",
            "other_info",
        ]
        widgets = {
            "models": forms.Textarea(attrs={"rows": 3}),
            "base_url": forms.TextInput(attrs={"size": 60}),
            "other": forms.TextInput(attrs={"size": 60}),
            "openai_organization": forms.TextInput(),
            "test_model": forms.TextInput(),
            "model_mapping": forms.Textarea(attrs={"rows": 3}),
            "status_code_mapping": forms.TextInput(attrs={"size": 60}),
            "param_override": forms.Textarea(attrs={"rows": 3}),
            "setting": forms.Textarea(attrs={"rows": 3}),
            "other_info": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "models": _("Comma-separated model names."),
            "group": _("Comma-separated groups."),
            "base_url": _("Empty = the type's default base URL."),
            "setting": _(
                'JSON, e.g. {"proxy": "socks5://host:1080", "rpm_limit": 60, "tpm_limit": 100000} '
                "(an http://, https:// or socks5:// proxy for this channel's upstream calls; requests and "
                "tokens a minute, 0 = no limit)."
            ),
        }

    actor: Any = None  # the signed-in user, set by ChannelAdmin.get_form

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["key"] = ""
        self._adding = self.instance.pk is None
        if self._adding:
            self.fields["key"].required = True
            self.fields["key"].help_text = _("One upstream API key (Vertex AI: the service-account JSON).")
        else:
            # Write what the admin changed, not the row as it was at submit: an auto-disable
            # while the form was open stays.
            compare_with_seen(self, skip=["key"])

    def clean_models(self) -> str:
        names = [m.strip() for m in (self.cleaned_data.get("models") or "").split(",") if m.strip()]
        too_long = [m for m in names if len(m) > 255]
        if too_long:
            raise forms.ValidationError(
                _("Model names must be at most 255 characters: %(name)s…"), params={"name": too_long[0][:40]}
            )
        return ",".join(dict.fromkeys(names))

    def clean_group(self) -> str:
        groups = [g.strip() for g in (self.cleaned_data.get("group") or "").split(",") if g.strip()]
        return ",".join(dict.fromkeys(groups)) or "default"

    def clean(self) -> dict[str, Any]:
        cleaned = cast(dict[str, Any], super().clean())  # ModelForm.clean returns cleaned_data
        for name in _JSON_OBJECT_FIELDS:
            raw = (cleaned.get(name) or "").strip()
            if raw and not _is_json_object(raw):
                self.add_error(name, _('Must be a JSON object, e.g. {"a": "b"}.'))
            elif name == "setting" and (problem := limits.setting_problem(raw)) is not None:
                self.add_error(name, problem)
        key = (cleaned.get("key") or "").strip()
        if key:
            cleaned["key"] = key
        else:
            cleaned.pop("key", None)  # editing with an empty key keeps the stored one
        if not self._adding and self.actor is not None:
            # self.instance is still the stored row here: the form's values are put on it later.
            moved: dict[str, Any] = {n: cleaned[n] for n in ("type", "base_url", "other") if n in cleaned}
            try:
                check_endpoint_change(self.actor, endpoint_changes(self.instance, moved), bool(key))
            except ApiError:
                raise forms.ValidationError(
                    _(
                        "Only root may change the type, base URL or Vertex region of a channel without "
                        "giving a new key: enter the key to use with the new endpoint."
                    )
                ) from None
        return cleaned


def _is_json_object(raw: str) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


class GroupFilter(admin.SimpleListFilter):
    """channels.group is a comma-separated list, so match one member, not the whole string."""

    title = _("group")
    parameter_name = "group"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        groups: set[str] = set()
        for value in Channel.objects.values_list("group", flat=True).distinct():
            groups.update(g.strip() for g in (value or "").split(",") if g.strip())
        return [(g, g) for g in sorted(groups)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        group = self.value()
        if not group:
            return queryset
        member = (
            Q(group=group)
            | Q(group__startswith=f"{group},")
            | Q(group__endswith=f",{group}")
            | Q(group__contains=f",{group},")
        )
        return queryset.filter(member)


class TypeFilter(admin.SimpleListFilter):
    title = _("type")
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        used = sorted(set(Channel.objects.values_list("type", flat=True)))
        return [(str(t), f"{t} · {channel_type_name(t)}") for t in used]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(type=int(value)) if value and value.lstrip("-").isdigit() else queryset


@admin.register(Channel)
class ChannelAdmin(MultiKeyAdminMixin, admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = [
        "id",
        "name",
        "type_label",
        "status_label",
        "models_short",
        "group",
        "priority",
        "weight",
        "used_quota",
        "response_time",
        "balance",
        "masked_key",
    ]
    list_display_links = ["id", "name"]
    search_fields = ["name", "models", "tag"]
    list_filter = [
        TypeFilter,
        choices_filter("status", _("status"), CHANNEL_STATUS_CHOICES),
        GroupFilter,
        "tag",
    ]
    ordering = ["-priority", "-id"]
    actions = ["enable_channels", "disable_channels", "test_channels", "enable_all_keys"]
    readonly_fields = [
        "masked_key",
        "base_url_in_use",
        "created",
        "tested",
        "response_time",
        "balance",
        "balance_updated",
        "used_quota",
        "used_usd",
        "abilities",
        "key_statuses",
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        basics = ["name", "type", "key", "base_url", "other", "openai_organization", "test_model"]
        if obj is not None:
            basics[2:2] = ["masked_key"]
            basics.insert(basics.index("base_url") + 1, "base_url_in_use")
        sets: list = [
            (None, {"fields": basics}),
            *self.key_fieldsets(obj),
            (
                _("Routing"),
                {"fields": ["status", "auto_ban", "models", "group", "priority", "weight", "tag"]},
            ),
            (
                _("Request rewriting"),
                {
                    "fields": [
                        "model_mapping",
                        "status_code_mapping",
                        "param_override",
                        "setting",
                        "other_info",
                    ]
                },
            ),
        ]
        if obj is not None:
            stats = [
                "created",
                "tested",
                "response_time",
                "balance",
                "balance_updated",
                "used_quota",
                "used_usd",
            ]
            sets += [(_("Statistics"), {"fields": stats}), (_("Abilities"), {"fields": ["abilities"]})]
        return sets

    # -- columns ---------------------------------------------------------------------
    @admin.display(description=_("type"), ordering="type")
    def type_label(self, obj: Channel) -> str:
        return f"{obj.type} · {channel_type_name(obj.type)}"

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, obj: Channel) -> str:
        return label_of(CHANNEL_STATUS_CHOICES, obj.status)

    @admin.display(description=_("models"))
    def models_short(self, obj: Channel) -> str:
        text = ", ".join(obj.model_list())
        return text if len(text) <= 60 else text[:57] + "..."

    @admin.display(description=_("key"))
    def masked_key(self, obj: Channel) -> str:
        return mask_key(obj.key)

    @admin.display(description=_("base URL in use"))
    def base_url_in_use(self, obj: Channel) -> str:
        url = effective_base_url(obj.type, obj.base_url)
        if not (obj.base_url or "").strip():
            if not url:
                return gettext("none: this type needs a base URL")
            return gettext("%(url)s (type default)") % {"url": url}
        return url

    @admin.display(description=_("created"))
    def created(self, obj: Channel) -> str:
        return format_ts(obj.created_time)

    @admin.display(description=_("last test"))
    def tested(self, obj: Channel) -> str:
        return format_ts(obj.test_time)

    @admin.display(description=_("balance updated"))
    def balance_updated(self, obj: Channel) -> str:
        return format_ts(obj.balance_updated_time)

    @admin.display(description=_("used ($)"))
    def used_usd(self, obj: Channel) -> str:
        return quota_in_usd(obj.used_quota)

    @admin.display(description=_("abilities (group × model routing rows)"))
    def abilities(self, obj: Channel) -> str:
        # Ability has a composite primary key, which the admin cannot register; show it here.
        rows = Ability.objects.filter(channel_id=obj.pk).order_by("group", "model")
        if not rows:
            return gettext("No abilities: the channel has no models or groups.")
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    a.group,
                    a.model,
                    gettext("yes") if a.enabled else gettext("no"),
                    a.priority,
                    a.weight,
                    a.tag or "",
                )
                for a in rows
            ),
        )
        head = format_html_join(
            "",
            "<th>{}</th>",
            (
                (name,)
                for name in (_("group"), _("model"), _("enabled"), _("priority"), _("weight"), _("tag"))
            ),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(self, request: HttpRequest, obj: Channel, form: forms.ModelForm, change: bool) -> None:
        # Through Channel.save() either way: the post_save signal rebuilds abilities.
        if change:
            columns = {f.name for f in obj._meta.concrete_fields}
            names = [n for n in form.changed_data if n in columns]
            if "key" in names:
                names += rekeyed(obj)
            save_channel_fields(obj, names)
        else:
            obj.save()

    # -- actions -------------------------------------------------------------------------
    @admin.action(description=_("Enable selected channels"))
    def enable_channels(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, queryset, status=CHANNEL_ENABLED)

    @admin.action(description=_("Disable selected channels"))
    def disable_channels(self, request: HttpRequest, queryset: QuerySet) -> None:
        save_each(request, self, queryset, status=CHANNEL_MANUALLY_DISABLED)

    @admin.action(description=_("Test selected channels"))
    def test_channels(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            try:
                result = test_channel_sync(channel)
            except Exception as exc:  # a per-channel report, not a crash page
                failed = gettext("%(channel)s: test failed: %(error)s") % {"channel": channel, "error": exc}
                self.message_user(request, failed, messages.ERROR)
                continue
            level = messages.SUCCESS if result.success else messages.ERROR
            self.message_user(request, f"{channel}: {result}", level)
