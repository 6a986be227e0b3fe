"""Keep every process's token/user/option caches honest when rows change.

Token keys never travel on the bus (its file transport is a log on disk): a digest does.
`balance:<user id>` tells holders of a user's recently seen balance (its own or one of its
tokens') to drop it.

`user_registered` is sent after a sign-up (password or OAuth) with `user`, `inviter` (a User or
None) and `inviter_bonus` (quota added to the inviter's aff_quota): the apps above accounts
react to it (billing grants the invitee's gift and writes the log lines).
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from newapi_site import bus

from .models import Option, Token, User

user_registered = Signal()


@receiver([post_save, post_delete], sender=Token)
def _token_changed(sender, instance: Token, **kwargs) -> None:
    bus.publish(bus.token_topic(instance.key))
    bus.publish(f"balance:{instance.user_id}")


@receiver([post_save, post_delete], sender=User)
def _user_changed(sender, instance: User, **kwargs) -> None:
    bus.publish(f"user:{instance.pk}")
    bus.publish(f"balance:{instance.pk}")


@receiver([post_save, post_delete], sender=Option)
def _option_changed(sender, instance: Option, **kwargs) -> None:
    bus.publish("options")
