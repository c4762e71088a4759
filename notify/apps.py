from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "notify"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from console import schedules
        from notify import receivers

        post_save.connect(
            receivers.audit_event_saved, sender="audit.AuditEvent", dispatch_uid="notify.audit"
        )
        # Stuck breakers, unreadable accounts, the daily digest and retries: every minute.
        schedules.register("notify.watch", "notify.tasks.watch_pass", minutes=1)
