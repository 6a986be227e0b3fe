"""The abilities table: one (group, model, channel) routing row per channel group × model."""

from __future__ import annotations

from django.db import transaction

from relay.models import CHANNEL_ENABLED, Ability, Channel


def rebuild_abilities(channel: Channel) -> int:
    rows = [
        Ability(
            group=group,
            model=model,
            channel_id=channel.pk,
            enabled=channel.status == CHANNEL_ENABLED,
            priority=channel.priority or 0,
            weight=channel.weight or 0,
            tag=channel.tag,
        )
        for group in dict.fromkeys(channel.group_list())
        for model in dict.fromkeys(channel.model_list())
    ]
    with transaction.atomic():
        Ability.objects.filter(channel_id=channel.pk).delete()
        Ability.objects.bulk_create(rows, batch_size=50)
    return len(rows)


def fix_abilities() -> int:
    """Rebuild every channel's rows and drop orphans (POST /api/channel/fix)."""
    count = 0
    ids = set()
    for channel in Channel.objects.all():
        count += rebuild_abilities(channel)
        ids.add(channel.pk)
    Ability.objects.exclude(channel_id__in=ids).delete()
    return count
