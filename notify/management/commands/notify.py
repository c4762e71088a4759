"""``manage.py notify watch | watchdog | test CHANNEL``.

``watchdog`` is for cron or a scheduled task outside the worker (every minute or few): a silent
worker cannot say so itself, so this process notices it and sends, once per silence.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.cli import cli_actor
from notify import actions, watch
from notify.models import Channel


class Command(BaseCommand):
    help = "Notifications: run the watch pass, the worker watchdog, or send a test."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("watch", help="stuck breakers, digest, accounts, retries: now")
        commands.add_parser("watchdog", help="notify when no worker beats (run outside the worker)")
        test = commands.add_parser("test", help="send a test to a channel, from this process")
        test.add_argument("channel", help="channel name")
        for sub in commands.choices.values():
            sub.add_argument("--json", action="store_true")

    def handle(self, *args: Any, command: str, **options: Any) -> None:
        if command == "watch":
            report = watch.do_watch()
            out: dict[str, Any] = {"notified": report.notified, "sent_again": report.resent}
        elif command == "watchdog":
            out = {"notified": watch.do_watchdog()}
        else:
            channel = Channel.objects.filter(name=options["channel"]).first()
            if channel is None:
                raise CommandError(f"no channel named {options['channel']!r}")
            delivery = actions.do_send_test(channel, actor=cli_actor())
            sent = actions.do_send_delivery(delivery.pk) or delivery
            out = {"status": sent.status, "error": sent.last_error}
        if options["json"]:
            self.stdout.write(json.dumps(out))
        else:
            for key, value in out.items():
                self.stdout.write(f"{key}: {value}")
