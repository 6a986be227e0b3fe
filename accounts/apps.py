from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from newapi_site import options


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        # Models and receivers load once the app registry is ready, not at this module's import.
        from . import signals  # noqa: F401  (cache invalidation on save/delete)
        from .models import Option

        options.bind_table(Option)
