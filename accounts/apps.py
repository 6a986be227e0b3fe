from django.apps import AppConfig

from newapi_site import options


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Models and receivers load once the app registry is ready, not at this module's import.
        from . import signals  # noqa: F401  (cache invalidation on save/delete)
        from .models import Option

        options.bind_table(Option)
