from typing import Any

from django.core.management.base import BaseCommand

from console import schedules


class Command(BaseCommand):
    help = "Create or update the worker's recurring schedules (also done after every migrate)."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = schedules.sync()
        self.stdout.write(f"{len(schedules.registered())} schedules, {changed} created or updated")
