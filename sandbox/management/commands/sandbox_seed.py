import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox import seed


class Command(BaseCommand):
    help = (
        "Fill the sandbox AWS (AWS_ENDPOINT_URL) with the demo data and register its accounts; "
        "`manage.py demo` runs it. Refuses to run outside the sandbox."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--admin-password-env",
            metavar="VARIABLE",
            help="also create the demo user 'admin' with the password in this environment variable",
        )

    def handle(self, *args, admin_password_env: str | None, **options) -> None:
        # Seeding creates and changes AWS resources: only ever against an endpoint we started.
        if not settings.SANDBOX or not os.environ.get("AWS_ENDPOINT_URL"):
            raise CommandError(
                "sandbox_seed needs CONSOLE_SANDBOX=true and AWS_ENDPOINT_URL (the sandbox AWS)"
            )
        ran = seed.seed_all()
        self.stdout.write(f"Seeded the sandbox: {', '.join(ran)}")
        if admin_password_env:
            password = os.environ.get(admin_password_env)
            if not password:
                raise CommandError(f"{admin_password_env} is not set")
            seed.create_demo_admin(password)
