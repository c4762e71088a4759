from django.apps import AppConfig


class CleanupConfig(AppConfig):
    name = "cleanup"
    verbose_name = "ECR cleanup"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from cleanup import handlers, tiles  # noqa: F401  (tiles: dashboard registration)
        from cleanup.usage import SKIPPABLE_SOURCES

        unknown = sorted(set(settings.CLEANUP_SKIP_SOURCES) - SKIPPABLE_SOURCES)
        if unknown:
            raise ImproperlyConfigured(
                f"CLEANUP_SKIP_SOURCES={','.join(settings.CLEANUP_SKIP_SOURCES)!r} is invalid: "
                f"unknown source {', '.join(unknown)}; known: {', '.join(sorted(SKIPPABLE_SOURCES))}"
            )
        from console import schedules
        from webhooks import registry

        registry.register(
            registry.TASK_DEFINITION_DEREGISTERED, handlers.on_task_definition_deregistered
        )
        registry.register(registry.CONFIG_ITEM_CHANGE, handlers.on_config_item_change)
        schedules.register("cleanup.sync", "cleanup.tasks.sync_inventory", minutes=60)
        schedules.register("cleanup.run-due", "cleanup.tasks.run_due_checks", minutes=1)
        schedules.register("cleanup.delete-due", "cleanup.tasks.delete_due", minutes=1)
        schedules.register("cleanup.sweep", "cleanup.tasks.sweep", cron="17 3 * * *")
        schedules.register("cleanup.archive", "cleanup.archive_tasks.archive_pass", minutes=5)
