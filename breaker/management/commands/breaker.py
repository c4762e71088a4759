import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import AwsAccount
from breaker import actions
from breaker.models import Breaker, validate_ramp_steps
from console.cli import cli_actor, describe


def positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def ramp_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
        validate_ramp_steps(steps)
    except ValueError:
        raise CommandError(f"--gradual-close {text}: write whole numbers, e.g. 2,5,20") from None
    except ValidationError as exc:
        raise CommandError(f"--gradual-close {text}: {' '.join(exc.messages)}") from None
    return steps


class Command(BaseCommand):
    help = (
        "Add, list, trip and reset Lambda circuit breakers; tick runs due probes and the reconcile."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, parser_class=type(parser))

        add = commands.add_parser(
            "add", help="put a breaker on a function's SQS mapping", called_from_command_line=True
        )
        add.add_argument("name", metavar="NAME")
        add.add_argument("--account", required=True, metavar="ID", help="registered account id")
        add.add_argument("--region", required=True, metavar="R")
        add.add_argument("--function", required=True, metavar="F")
        add.add_argument(
            "--mapping", default="", metavar="UUID", help="default: the function's only SQS mapping"
        )
        add.add_argument(
            "--alarm",
            action="append",
            required=True,
            metavar="ARN_OR_NAME",
            help="repeat for several",
        )
        add.add_argument("--successes-to-close", type=positive, metavar="N")
        add.add_argument("--probe-interval", type=positive, metavar="SECONDS")
        add.add_argument("--backoff", type=positive, metavar="SECONDS")
        add.add_argument("--backoff-cap", type=positive, metavar="SECONDS")
        add.add_argument(
            "--keep-probing-when-empty", action="store_true", help="an empty queue does not close"
        )
        add.add_argument(
            "--gradual-close",
            metavar="STEPS",
            help="close through these maximum-concurrency steps, e.g. 2,5,20, then the mapping's "
            "own setting",
        )
        add.add_argument(
            "--ramp-step",
            type=positive,
            metavar="SECONDS",
            help="time without ALARM at each step (default 300)",
        )
        add.add_argument("--json", action="store_true")

        listing = commands.add_parser(
            "list", help="every breaker and its state", called_from_command_line=True
        )
        listing.add_argument("--json", action="store_true")

        trip = commands.add_parser(
            "trip", help="open by hand until reset", called_from_command_line=True
        )
        trip.add_argument("name", metavar="NAME")
        trip.add_argument("--reason", required=True, metavar="TEXT")

        reset = commands.add_parser(
            "reset",
            help="close, enable the mapping, back to automatic",
            called_from_command_line=True,
        )
        reset.add_argument("name", metavar="NAME")

        tick = commands.add_parser(
            "tick", help="reconcile now and run the due probes", called_from_command_line=True
        )
        tick.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['command']}")(options)

    def _breaker(self, name: str) -> Breaker:
        breaker = Breaker.objects.select_related("account").filter(name=name).first()
        if breaker is None:
            raise CommandError(f"no breaker named {name}")
        return breaker

    def handle_add(self, options: dict[str, Any]) -> None:
        account = AwsAccount.objects.filter(account_id=options["account"]).first()
        if account is None:
            raise CommandError(
                f"account {options['account']} is not registered (manage.py aws_account add)"
            )
        settings = {
            field: options[option]
            for option, field in [
                ("successes_to_close", "successes_to_close"),
                ("probe_interval", "probe_interval_seconds"),
                ("backoff", "backoff_seconds"),
                ("backoff_cap", "backoff_cap_seconds"),
            ]
            if options[option] is not None
        }
        if options["keep_probing_when_empty"]:
            settings["close_when_queue_empty"] = False
        if options["gradual_close"]:
            settings["gradual_close"] = True
            settings["ramp_steps"] = ramp_steps(options["gradual_close"])
        if options["ramp_step"] is not None:
            settings["ramp_step_seconds"] = options["ramp_step"]
        try:
            breaker = actions.do_add_breaker(
                actor=cli_actor(),
                name=options["name"],
                account=account,
                region=options["region"],
                function_name=options["function"],
                mapping_uuid=options["mapping"],
                alarms=options["alarm"],
                **settings,
            )
        except ValidationError as exc:
            raise CommandError(f"breaker not added: {describe(exc)}") from None
        if options["json"]:
            self.stdout.write(json.dumps(as_json(breaker), indent=2))
        else:
            self.stdout.write(
                f"added {breaker.name}: {breaker.function_name} <- {breaker.queue_arn} (mapping {breaker.mapping_uuid})"
            )

    def handle_list(self, options: dict[str, Any]) -> None:
        breakers = list(Breaker.objects.select_related("account").attention_first())
        if options["json"]:
            self.stdout.write(json.dumps([as_json(breaker) for breaker in breakers], indent=2))
            return
        for b in breakers:
            state = "broken" if b.broken else b.get_state_display()
            self.stdout.write(
                f"{b.name:<24} {state:<10} {b.mode:<12} {b.account.account_id} {b.region:<12} "
                f"{b.function_name:<24} alarm {b.alarm_summary:<8} mapping {b.mapping_state or '?'}"
            )

    def handle_trip(self, options: dict[str, Any]) -> None:
        breaker = self._breaker(options["name"])
        try:
            actions.do_trip(breaker, actor=cli_actor(), reason=options["reason"])
        except ValidationError as exc:
            raise CommandError(describe(exc)) from None
        self.stdout.write(f"{breaker.name} tripped (mapping {breaker.mapping_state or 'unknown'})")
        if breaker.mapping_error:
            raise CommandError(
                f"{breaker.name} is open but the mapping change failed: {breaker.mapping_error}"
            )

    def handle_reset(self, options: dict[str, Any]) -> None:
        breaker = self._breaker(options["name"])
        actions.do_reset(breaker, actor=cli_actor())
        self.stdout.write(
            f"{breaker.name} reset: closed (mapping {breaker.mapping_state or 'unknown'})"
        )
        if breaker.mapping_error:
            raise CommandError(
                f"{breaker.name} is closed but the mapping change failed: {breaker.mapping_error}"
            )

    def handle_tick(self, options: dict[str, Any]) -> None:
        report = actions.do_tick(actor=cli_actor())
        if options["json"]:
            self.stdout.write(json.dumps(report.__dict__, indent=2))
        else:
            self.stdout.write(
                f"reconciled {report.reconciled} breaker(s), {report.timers} back-off(s) ended"
            )
            for line in report.probes:
                self.stdout.write(f"probe {line}")
        for error in report.errors:
            self.stderr.write(error)
        if report.errors:
            raise CommandError(f"{len(report.errors)} error(s) during the tick")


def as_json(breaker: Breaker) -> dict[str, Any]:
    return {
        "name": breaker.name,
        "account_id": breaker.account.account_id,
        "region": breaker.region,
        "function": breaker.function_name,
        "mapping_uuid": breaker.mapping_uuid,
        "queue_arn": breaker.queue_arn,
        "alarms": breaker.alarms,
        "state": breaker.state,
        "mode": breaker.mode,
        "broken": breaker.broken,
        "alarm_state": breaker.alarm_summary,
        "mapping_state": breaker.mapping_state,
        "next_probe_at": breaker.next_probe_at.isoformat() if breaker.next_probe_at else None,
        "settings": {
            field: getattr(breaker, field) for field in actions.SETTINGS_FIELDS if field != "alarms"
        },
    }
