from django.apps import AppConfig

from newapi_site.option_defaults import register_defaults

from .ratio_defaults import OPTION_DEFAULTS


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        register_defaults(OPTION_DEFAULTS)
        from . import signals  # noqa: F401  (Redis balance mirror upkeep; models load after the registry)
