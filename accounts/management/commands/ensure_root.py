"""Create root / 123456 (role root) when no root user exists, as One API does at first start."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.admin_login import default_password_warning
from accounts.models import Setup, Token, User
from newapi_site.roles import ROLE_ROOT


class Command(BaseCommand):
    help = "Create the root user (root/123456) if the database has none."

    def handle(self, *args, **options) -> None:
        self._create_root()
        warning = default_password_warning()
        if warning:
            self.stderr.write(self.style.WARNING(warning))

    def _create_root(self) -> None:
        if User.objects.filter(role__gte=ROLE_ROOT).exists():
            if not Setup.objects.exists():
                Setup.objects.create(version="newapi-django")
            return
        root = User(username="root", display_name="Root User", role=ROLE_ROOT, quota=100_000_000)
        root.set_password(settings.INITIAL_ROOT_PASSWORD)
        if settings.INITIAL_ROOT_ACCESS_TOKEN:
            root.access_token = settings.INITIAL_ROOT_ACCESS_TOKEN
        root.save()
        if settings.INITIAL_ROOT_TOKEN:
            Token.objects.create(
                user_id=root.pk,
                key=settings.INITIAL_ROOT_TOKEN.removeprefix("sk-"),
                name="Initial Root Token",
                unlimited_quota=True,
            )
        Setup.objects.get_or_create(defaults={"version": "newapi-django"})
        self.stdout.write("created root user: root / (INITIAL_ROOT_PASSWORD, default 123456)")
