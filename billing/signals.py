"""Keep the balance mirror (Redis, or the embedded ledger's owner) honest when users or tokens
appear or disappear.

A new or deleted row drops its mirror key, so an id reused by the database (SQLite rowids in
adopted One API files can be) never inherits someone else's balance; the next request reloads it.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Token, User
from newapi_site import redis as r

from .ledger import token_key, user_key


def _forget(kind: str, row_id: int) -> None:
    if r.redis_enabled():
        r.sync_redis().delete(user_key(row_id) if kind == "u" else token_key(row_id))
    else:  # the embedded ledger's owner, when one runs
        from .local_ledger import forget

        forget(kind.encode(), row_id)


@receiver(post_save, sender=User)
def _user_created(sender, instance: User, created: bool, **kwargs) -> None:
    if created:
        _forget("u", instance.pk)


@receiver(post_delete, sender=User)
def _user_deleted(sender, instance: User, **kwargs) -> None:
    _forget("u", instance.pk)


@receiver(post_save, sender=Token)
def _token_created(sender, instance: Token, created: bool, **kwargs) -> None:
    if created:
        _forget("t", instance.pk)


@receiver(post_delete, sender=Token)
def _token_deleted(sender, instance: Token, **kwargs) -> None:
    _forget("t", instance.pk)
