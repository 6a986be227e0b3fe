"""Keep the balance mirror (Redis, or the embedded ledger's owner) honest when users or tokens
appear or disappear.

A new or deleted row drops its mirror key, so an id reused by the database (SQLite rowids in
adopted One API files can be) never inherits someone else's balance; the next request reloads it.
A sign-up gets its gifts and log lines here (accounts sends user_registered).
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Token, User
from accounts.signals import user_registered
from newapi_site import redis as r
from newapi_site.money import log_quota
from newapi_site.options import options

from .ledger import token_key, user_key
from .local_ledger import forget
from .models import LOG_SYSTEM
from .services.credit import credit_user
from .services.logs import record_log


def _forget(kind: str, row_id: int) -> None:
    if r.redis_enabled():
        r.sync_redis().delete(user_key(row_id) if kind == "u" else token_key(row_id))
    else:  # the embedded ledger's owner, when one runs
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


@receiver(user_registered)
def _registration_gifts(sender, user: User, inviter: User | None, inviter_bonus: int, **kwargs) -> None:
    if user.quota > 0:
        record_log(user.pk, LOG_SYSTEM, f"新用户注册赠送 {log_quota(user.quota)}", user.username)
    if inviter is None:
        return
    invitee_bonus = options.get_int("QuotaForInvitee")
    if invitee_bonus > 0:
        credit_user(user.pk, invitee_bonus)
        record_log(user.pk, LOG_SYSTEM, f"使用邀请码赠送 {log_quota(invitee_bonus)}", user.username)
    if inviter_bonus > 0:
        record_log(inviter.pk, LOG_SYSTEM, f"邀请用户赠送 {log_quota(inviter_bonus)}", inviter.username)
