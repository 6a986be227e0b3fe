"""What each field of the channel editor means for each channel type (shown beside the field).

The admin form has generic columns (`key`, `base_url`, `other`, `openai_organization`); their
meaning depends on the type: Azure's API version and Vertex's region live in `other`, AWS and
several Chinese providers pack several secrets into `key`. Types not listed get the generic texts.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from relay.adaptors.registry import CHANNEL_TYPE_CHOICES, default_base_url
from relay.channels.types import ChannelType as T

GENERIC: dict[str, Any] = {
    "key": _("The upstream API key (one per line to rotate several keys)."),
    "base_url": _("Leave empty for the provider's address; set it for a proxy or a self-hosted server."),
    "other": "",
    "openai_organization": "",
}

NO_NATIVE_ADAPTOR: dict[str, Any] = {
    "key": _(
        "No native adaptor for this type: requests go out in OpenAI's format, so give the "
        "provider's OpenAI-compatible key and address (or pick its OpenAI-compatible type)."
    )
}


def type_help(channel_type: int) -> dict[str, Any]:
    """Field -> help for one type ("" hides a field it does not use); {} keeps the generic texts."""
    match channel_type:
        case T.OPENAI:
            return {
                "openai_organization": _("Optional OpenAI organization id (sent as OpenAI-Organization).")
            }
        case T.AZURE:
            return {
                "base_url": _(
                    "Required: your resource's endpoint, e.g. https://my-resource.openai.azure.com."
                ),
                "other": _("API version, e.g. 2024-12-01-preview (empty: the server default)."),
                "key": _("The resource's API key."),
            }
        case T.VERTEX_AI:
            return {
                "key": _("The service-account JSON file's whole content (Vertex AI User role)."),
                "other": _(
                    'Region, e.g. us-east5; or JSON per model: {"default": "us-central1", "claude-3-5-sonnet-20240620": "us-east5"}.'
                ),
                "base_url": _("Leave empty: https://<region>-aiplatform.googleapis.com is used."),
            }
        case T.AWS:
            return {
                "key": _(
                    "AccessKeyId|SecretAccessKey|region, e.g. AKIA…|wJal…|us-east-1 (a 4th part: session token)."
                ),
                "base_url": "",
            }
        case T.GEMINI:
            return {"key": _("A Google AI Studio API key.")}
        case T.CLOUDFLARE:
            return {"other": _("Required: your Cloudflare account id."), "key": _("A Workers AI API token.")}
        case T.BAIDU | T.XUNFEI | T.TENCENT | T.ZHIPU:
            return NO_NATIVE_ADAPTOR
        case T.MIDJOURNEY:
            return {
                "base_url": _("Required: your midjourney-proxy's address."),
                "key": _("The proxy's mj-api-secret (empty if it has none)."),
            }
        case T.MIDJOURNEY_PLUS:
            return {
                "base_url": _("Required: your Midjourney Plus proxy's address."),
                "key": _("The proxy's mj-api-secret."),
            }
        case T.SUNO_API:
            return {"base_url": _("Required: your Suno API server's address."), "key": _("Its API key.")}
        case T.OLLAMA:
            return {
                "base_url": _("Required: the Ollama server, e.g. http://127.0.0.1:11434."),
                "key": _("Any text."),
            }
        case T.XINFERENCE:
            return {"base_url": _("Required: the Xinference server's address.")}
        case T.DIFY:
            return {
                "base_url": _("Required: the Dify server's address."),
                "key": _("The Dify app's API key."),
            }
        case T.CUSTOM:
            return {"base_url": _("Required: the full address of an OpenAI-compatible server.")}
    return {}


LABELS = {
    "fetch": _("Fetch models from the upstream"),
    "add": _("Add the selected models"),
    "pick": _("Models offered by the upstream"),
    "test": _("Test this channel"),
    "test_model": _("Model to test (empty: the channel's test model)"),
    "ok": _("Works: answered in %(ms)s ms"),
    "failed": _("Failed"),
    "working": _("Working…"),
}


def editor_texts() -> dict[str, Any]:
    """What the editor's script needs: help per type and its own labels, translated."""
    return {"types": help_for_all_types(), "labels": {name: str(text) for name, text in LABELS.items()}}


def help_for_all_types() -> dict[str, dict[str, Any]]:
    """Every type's help texts and default base URL, for the editor's script (JSON-safe)."""
    data: dict[str, dict[str, Any]] = {}
    for number, _label in CHANNEL_TYPE_CHOICES:
        fields = {**GENERIC, **type_help(int(number))}
        data[str(number)] = {
            "help": {name: str(text) for name, text in fields.items() if text},
            "hide": [name for name, text in fields.items() if not text and name != "key"],
            "default_base_url": default_base_url(int(number)),
        }
    return data
