from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from console import schedules

        post_migrate.connect(schedules.sync_after_migrate, sender=self)
