"""Users, API tokens, options and the setup marker, on New API's own tables and columns."""

from __future__ import annotations

import secrets
import string
import time
from typing import ClassVar

import bcrypt
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils.translation import gettext_lazy as _

from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON, ROLE_ROOT, USER_ENABLED

TOKEN_ENABLED, TOKEN_DISABLED, TOKEN_EXPIRED, TOKEN_EXHAUSTED = 1, 2, 3, 4
BUDGET_PERIODS = ("day", "week", "month")
BUDGET_PERIOD_CHOICES = [("", _("None")), ("day", _("Daily")), ("week", _("Weekly")), ("month", _("Monthly"))]

_KEY_ALPHABET = string.ascii_letters + string.digits


def now_ts() -> int:
    return int(time.time())


def generate_key(length: int = 48) -> str:
    """New API token keys: 48 chars of [0-9a-zA-Z], stored without the sk- prefix."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(length))


def hash_password(raw: str) -> str:
    # New API stores raw bcrypt cost-10 hashes ($2a$10$...); we write the same so the
    # database stays usable by New API itself.
    hashed = bcrypt.hashpw(raw.encode(), bcrypt.gensalt(rounds=10)).decode()
    return "$2a$" + hashed[4:] if hashed.startswith("$2b$") else hashed


def verify_password(raw: str, hashed: str) -> bool:
    if not hashed or not hashed.startswith("$2"):
        return False
    try:
        return bcrypt.checkpw(raw.encode(), hashed.encode())
    except ValueError:
        return False


class UserManager(BaseUserManager["User"]):
    def create_user(self, username: str, password: str, **extra) -> User:
        user = self.model(username=username, **extra)
        user.set_password(password)
        user.save()
        return user

    def create_superuser(self, username: str, password: str, **extra) -> User:
        extra.setdefault("role", ROLE_ROOT)
        return self.create_user(username, password, **extra)


class LiveUserManager(UserManager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class User(AbstractBaseUser):
    last_login = None  # New API's users table has no such column

    username = models.CharField(_("username"), max_length=191, unique=True)
    password = models.TextField(_("password"))
    display_name = models.CharField(
        _("display name"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    role = models.IntegerField(_("role"), default=ROLE_COMMON)
    status = models.IntegerField(_("status"), default=USER_ENABLED)
    email = models.CharField(_("email"), max_length=191, null=True, blank=True, default="", db_index=True)
    github_id = models.CharField(
        _("GitHub account"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    oidc_id = models.CharField(
        _("OIDC account"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    wechat_id = models.CharField(
        _("WeChat account"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    telegram_id = models.CharField(
        _("Telegram account"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    linux_do_id = models.CharField(
        _("LinuxDO account"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    access_token = models.CharField(_("access token"), max_length=32, null=True, blank=True, unique=True)
    quota = models.BigIntegerField(_("remaining quota"), default=0)
    used_quota = models.BigIntegerField(_("used quota"), default=0)
    request_count = models.BigIntegerField(_("request count"), default=0)
    group = models.CharField(_("group"), max_length=64, default="default")
    aff_code = models.CharField(_("invitation code"), max_length=32, null=True, blank=True, unique=True)
    aff_count = models.BigIntegerField(_("invitations"), default=0)
    aff_quota = models.BigIntegerField(_("invitation rewards to transfer"), default=0)
    aff_history = models.BigIntegerField(_("invitation rewards in total"), default=0)
    inviter_id = models.BigIntegerField(_("inviter ID"), null=True, blank=True, default=0, db_index=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, db_index=True)
    setting = models.TextField(_("settings"), null=True, blank=True, default="")

    objects = UserManager()
    live = LiveUserManager()

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        db_table = "users"
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.username

    # Passwords are raw bcrypt, not Django's "algorithm$..." format.
    def set_password(self, raw_password: str | None) -> None:
        self.password = hash_password(raw_password or "")
        self._password = raw_password

    def check_password(self, raw_password: str) -> bool:  # type: ignore[override]  # never called with None
        return verify_password(raw_password, self.password)

    @property  # derived from New API's status column, so read-only
    def is_active(self) -> bool:  # type: ignore[override]
        return self.status == USER_ENABLED and self.deleted_at is None

    @property
    def is_staff(self) -> bool:
        return self.role >= ROLE_ADMIN and self.is_active

    @property
    def is_superuser(self) -> bool:
        return self.role >= ROLE_ROOT and self.is_active

    @property
    def is_admin(self) -> bool:
        return self.role >= ROLE_ADMIN

    @property
    def is_root(self) -> bool:
        return self.role >= ROLE_ROOT

    # The console is for admins and root: admins manage everything but options.
    def has_perm(self, perm: str, obj: object = None) -> bool:
        if not self.is_staff:
            return False
        if perm.startswith("accounts.") and "option" in perm:
            return self.is_superuser
        return True

    def has_perms(self, perm_list, obj: object = None) -> bool:
        return all(self.has_perm(p, obj) for p in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_staff


class LiveTokenManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Token(models.Model):
    user_id = models.BigIntegerField(_("user ID"), db_index=True)
    key = models.CharField(_("key"), max_length=48, unique=True, default=generate_key)
    status = models.BigIntegerField(_("status"), default=TOKEN_ENABLED)
    name = models.CharField(_("name"), max_length=191, null=True, blank=True, default="", db_index=True)
    created_time = models.BigIntegerField(_("created"), default=now_ts)
    accessed_time = models.BigIntegerField(_("last used"), default=now_ts)
    expired_time = models.BigIntegerField(_("expires"), default=-1)
    remain_quota = models.BigIntegerField(_("remaining quota"), default=0)
    unlimited_quota = models.BooleanField(_("unlimited quota"), default=False)
    model_limits_enabled = models.BooleanField(_("model limits enabled"), default=False)
    model_limits = models.CharField(_("model limits"), max_length=1024, null=True, blank=True, default="")
    allow_ips = models.TextField(_("allowed IPs"), null=True, blank=True, default="")
    used_quota = models.BigIntegerField(_("used quota"), default=0)
    group = models.CharField(_("group"), max_length=191, null=True, blank=True, default="")
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, db_index=True)
    # A periodic budget (not in New API): remain_quota is set back to budget_quota at the start of
    # every UTC day, ISO week or month. NULL on rows New API writes, so it can still share the table.
    budget_period = models.CharField(
        _("budget period"), max_length=8, null=True, blank=True, choices=BUDGET_PERIOD_CHOICES
    )
    budget_quota = models.BigIntegerField(_("budget quota"), null=True, blank=True)

    objects = models.Manager()
    live = LiveTokenManager()

    class Meta:
        db_table = "tokens"
        verbose_name = _("token")
        verbose_name_plural = _("tokens")

    def __str__(self) -> str:
        return self.name or f"token {self.pk}"

    @property
    def masked_key(self) -> str:
        return f"sk-{self.key[:3]}***{self.key[-3:]}" if self.key else ""


class Option(models.Model):
    key = models.CharField(_("option name"), max_length=191, primary_key=True)
    value = models.TextField(_("value"), blank=True, default="")

    class Meta:
        db_table = "options"
        verbose_name = _("option")
        verbose_name_plural = _("options")

    def __str__(self) -> str:
        return self.key


class Setup(models.Model):
    version = models.CharField(_("version"), max_length=50)
    initialized_at = models.BigIntegerField(_("initialized at"), default=now_ts)

    class Meta:
        db_table = "setups"
        verbose_name = _("setup record")
        verbose_name_plural = _("setup records")
