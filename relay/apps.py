from django.apps import AppConfig

from newapi_site.option_defaults import register_defaults


class RelayConfig(AppConfig):
    name = "relay"

    def ready(self) -> None:
        from relay.channels import signals  # noqa: F401  (abilities rebuild + cache invalidation)
        from relay.channels.affinity import OPTION_DEFAULTS

        register_defaults(OPTION_DEFAULTS)
