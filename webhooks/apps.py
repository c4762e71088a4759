from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhook inbox"

    def ready(self) -> None:
        from console import schedules
        from webhooks import handlers, tiles  # noqa: F401  (tiles registers the dashboard tile)

        handlers.register()
        schedules.register("webhooks.process-pending", "webhooks.tasks.process_pending", minutes=1)
