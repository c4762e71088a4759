from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "AWS accounts"

    def ready(self) -> None:
        from accounts import tiles  # noqa: F401  (dashboard tile)
        from accounts.actors import bind_command_actor

        bind_command_actor()
        from accounts.organizations import INTERVAL_MINUTES
        from console import schedules

        schedules.register(
            "accounts.organization-sync",
            "accounts.tasks.sync_organization",
            minutes=INTERVAL_MINUTES,
        )
