import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks import actions
from webhooks.models import InboundEvent


class Command(BaseCommand):
    help = "Work on the webhook inbox."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, parser_class=type(parser))
        process = commands.add_parser(
            "process",
            help="process every pending inbound event now, retries included even if not due yet",
            called_from_command_line=True,
        )
        process.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['command']}")(options)

    def handle_process(self, options: dict[str, Any]) -> None:
        outcomes = actions.do_process_pending(wait_for_retry=False, limit=None)
        still_pending = InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).count()
        counts = {
            status: outcomes.get(status, 0)
            for status in ("processed", "ignored", "failed", "received")
        }
        counts["skipped"] = outcomes.get("skipped", 0)
        if options["json"]:
            self.stdout.write(json.dumps({"outcomes": counts, "pending": still_pending}, indent=2))
            return
        total = sum(outcomes.values())
        self.stdout.write(
            f"{total} pending event{'s' if total != 1 else ''}: {counts['processed']} processed, "
            f"{counts['ignored']} ignored, {counts['failed']} failed, "
            f"{counts['received']} will be retried, {counts['skipped']} taken by another worker"
        )
