from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django_q.signals import post_spawn, pre_execute

        from console import schedules, worker

        # Django sends post_migrate only to apps with a models module: the console has one (the
        # heartbeats and schedule runs), so this runs once after every migrate and every flush.
        post_migrate.connect(
            schedules.sync_after_migrate, sender=self, dispatch_uid="console.schedules.sync"
        )
        post_spawn.connect(worker.start_heartbeat, dispatch_uid="console.worker.heartbeat")
        pre_execute.connect(worker.record_schedule_run, dispatch_uid="console.worker.runs")
