"""Saving a channel rebuilds its abilities and tells every process to reload its routing."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from newapi_site import bus
from relay.channels.abilities import rebuild_abilities
from relay.models import Ability, Channel


@receiver(post_save, sender=Channel)
def _channel_saved(sender, instance: Channel, raw: bool = False, **kwargs) -> None:
    if not raw:
        rebuild_abilities(instance)
    bus.publish("channels")


@receiver(post_delete, sender=Channel)
def _channel_deleted(sender, instance: Channel, **kwargs) -> None:
    Ability.objects.filter(channel_id=instance.pk).delete()
    bus.publish("channels")
