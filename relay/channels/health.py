"""Automatic channel disabling on fatal upstream errors.

Called by pipeline.attempt_all after each failed attempt. On a multi-key channel only the key the
attempt used is disabled (relay/channels/key_status.py); the channel goes with its last key. When the option
AutomaticDisableChannelEnabled is on and the channel allows it (auto_ban), an error that says the
channel's credentials or account are dead disables it: status 3 with the reason in other_info,
its abilities off, and every process told at once (bus "channels"); this process stops choosing
it before the database write even starts. A keyword in the error message counts only at an
auth/billing status (401, 402, 403, a quota-typed 429): providers echo user input in their 400s.
"""

from __future__ import annotations

import json
import logging
import time

from asgiref.sync import sync_to_async

from billing import notifications
from newapi_site import bus
from newapi_site.options import options
from relay import state
from relay.channels import key_status
from relay.channels.types import ChannelType
from relay.errors import RelayError
from relay.state import ChannelInfo

log = logging.getLogger("newapi.relay")

FATAL_CODES = {"invalid_api_key", "account_deactivated", "billing_not_active"}
FATAL_TYPES = {
    "insufficient_quota",
    "insufficient_user_quota",
    "authentication_error",
    "permission_error",
    "forbidden",
}


def disable_keywords() -> list[str]:
    raw = options.get("AutomaticDisableKeywords", "")
    return [k.strip().lower() for k in raw.splitlines() if k.strip()]


# Statuses at which an upstream speaks about the channel's own credentials or account. A message
# at any other status (a 400 above all) may be the user's input echoed back: never trusted.
AUTH_STATUSES = {401, 402, 403}
QUOTA_MARKERS = ("quota", "billing", "credit", "balance")


def _quota_typed(err: RelayError) -> bool:
    kind = f"{err.type or ''} {err.code or ''}".lower()
    return any(m in kind for m in QUOTA_MARKERS)


def is_fatal(channel_type: int, err: RelayError) -> bool:
    status = err.status
    if status == 400:
        return False
    if status == 401:
        return True
    if status == 403 and channel_type == ChannelType.GEMINI:
        return True
    if str(err.code or "") in FATAL_CODES or err.type in FATAL_TYPES:
        return True
    if status in AUTH_STATUSES or (status == 429 and _quota_typed(err)):
        message = err.message.lower()
        return any(k in message for k in disable_keywords())
    return False


def should_disable(channel: ChannelInfo, err: RelayError) -> bool:
    return (
        options.get_bool("AutomaticDisableChannelEnabled")
        and channel.auto_ban
        and is_fatal(channel.type, err)
    )


async def on_upstream_error(channel: ChannelInfo, err: RelayError) -> bool:
    """Disable what the error condemns. True when that was one key of a multi-key channel that
    still has others: the same channel may serve a retry with another key."""
    if not should_disable(channel, err):
        return False
    if channel.multi_key and channel.key_index >= 0:
        return await _disable_key(channel, err)
    state.channels.mark_disabled(channel.id)
    try:
        changed = await sync_to_async(disable_channel)(channel.id, err.message)
    except Exception:
        log.exception("could not auto-disable channel #%s", channel.id)
        return False
    if changed:
        log.warning("channel #%s (%s) auto-disabled: %s", channel.id, channel.name, err.message)
    return False


async def _disable_key(channel: ChannelInfo, err: RelayError) -> bool:
    """Only the key this attempt used; the channel goes when its last key does (key_status)."""
    state.channels.mark_key_disabled(channel.id, channel.key_index)
    left = [i for i in channel.live_keys if i != channel.key_index]
    if not left:
        state.channels.mark_disabled(channel.id)
    try:
        changed = await sync_to_async(key_status.disable_key)(channel.id, channel.key_index, err.message)
    except Exception:
        log.exception("could not auto-disable key %s of channel #%s", channel.key_index, channel.id)
        return bool(left)
    if changed:
        log.warning(
            "key %s of channel #%s (%s) auto-disabled: %s",
            channel.key_index,
            channel.id,
            channel.name,
            err.message,
        )
    return bool(left)


def disable_channel(channel_id: int, reason: str) -> bool:
    """Status 3, reason recorded, abilities off, all processes told. False if it was not enabled."""
    from django.db import transaction

    from relay.models import CHANNEL_AUTO_DISABLED, CHANNEL_ENABLED, Ability, Channel

    with transaction.atomic():
        row = (
            Channel.objects.select_for_update()
            .filter(pk=channel_id)
            .values("status", "other_info", "name")
            .first()
        )
        if row is None or row["status"] != CHANNEL_ENABLED:
            return False
        try:
            info = json.loads(row["other_info"] or "{}")
        except ValueError:
            info = {}
        if not isinstance(info, dict):
            info = {}
        info.update(status_reason=reason, status_time=int(time.time()))
        # update() rather than save(): the save signal would rebuild abilities as enabled
        Channel.objects.filter(pk=channel_id).update(
            status=CHANNEL_AUTO_DISABLED, other_info=json.dumps(info, ensure_ascii=False)
        )
        Ability.objects.filter(channel_id=channel_id).update(enabled=False)
    bus.publish("channels")
    notifications.notify_channel_disabled(channel_id, row["name"] or "", CHANNEL_AUTO_DISABLED, reason)
    return True
