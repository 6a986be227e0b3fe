from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from accounts import balance
from newapi_site.option_defaults import register_defaults

from .ratio_defaults import OPTION_DEFAULTS


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        register_defaults(OPTION_DEFAULTS)
        # Models and receivers load once the app registry is ready, not at this module's import.
        from . import (
            local_ledger,  # noqa: F401  (registers the embedded ledger with billing.ledger)
            retention,  # noqa: F401  (the daily prune_logs task)
            signals,  # noqa: F401  (balance mirror upkeep, registration gifts)
        )
        from .services import credit

        balance.install(credit)
