from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit history"

    def ready(self) -> None:
        from audit import signals  # noqa: F401  (sign-in events)
