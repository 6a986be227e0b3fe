from django.apps import AppConfig


class RelayConfig(AppConfig):
    name = "relay"

    def ready(self) -> None:
        from relay.channels import signals  # noqa: F401  (abilities rebuild + cache invalidation)
