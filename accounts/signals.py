"""Keep every process's token/user caches honest when rows change."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from newapi_site import bus

from .models import Option, Token, User


@receiver([post_save, post_delete], sender=Token)
def _token_changed(sender, instance: Token, **kwargs) -> None:
    bus.publish(f"token:{instance.key}")


@receiver([post_save, post_delete], sender=User)
def _user_changed(sender, instance: User, **kwargs) -> None:
    bus.publish(f"user:{instance.pk}")


@receiver([post_save, post_delete], sender=Option)
def _option_changed(sender, instance: Option, **kwargs) -> None:
    bus.publish("options")
