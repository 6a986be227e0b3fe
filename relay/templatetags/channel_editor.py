"""`{% channel_help %}`: the per-type field help the channel editor's script shows."""

from __future__ import annotations

from typing import Any

from django import template

from relay.pages.channel_help import editor_texts

register = template.Library()


@register.simple_tag
def channel_help() -> dict[str, Any]:
    return editor_texts()
