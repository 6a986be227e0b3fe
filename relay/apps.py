from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from newapi_site.option_defaults import register_defaults


class RelayConfig(AppConfig):
    name = "relay"
    verbose_name = _("Channels and relay")

    def ready(self) -> None:
        from relay.channels import signals  # noqa: F401  (abilities rebuild + cache invalidation)
        from relay.channels.affinity import OPTION_DEFAULTS

        register_defaults(OPTION_DEFAULTS)
