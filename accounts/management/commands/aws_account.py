import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import actions
from accounts.models import AwsAccount
from console.cli import cli_actor, describe


class Command(BaseCommand):
    help = "Register, list and verify the AWS accounts the console works in."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, parser_class=type(parser))

        add = commands.add_parser("add", help="register an account", called_from_command_line=True)
        add.add_argument("account_id", metavar="ACCOUNT_ID")
        add.add_argument("--name", required=True)
        add.add_argument(
            "--role-arn", default="", help="role to assume; empty: the console's own credentials"
        )
        add.add_argument("--external-id", default="")
        add.add_argument("--regions", default="", help="comma-separated, default: AWS_REGION")
        add.add_argument(
            "--usage-regions",
            default="",
            help="comma-separated regions where cleanup looks for images in use; "
            "default: every region enabled in the account",
        )
        add.add_argument("--environment", default="prod")
        add.add_argument(
            "--registry", action="store_true", help="the account holds ECR repositories"
        )

        listing = commands.add_parser("list", help="list accounts", called_from_command_line=True)
        listing.add_argument("--json", action="store_true")

        verify = commands.add_parser(
            "verify", help="check access (sts:GetCallerIdentity)", called_from_command_line=True
        )
        verify.add_argument(
            "account_id", nargs="?", metavar="ACCOUNT_ID", help="default: every enabled account"
        )
        verify.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['command']}")(options)

    def handle_add(self, options: dict[str, Any]) -> None:
        from django.conf import settings

        if AwsAccount.objects.filter(account_id=options["account_id"]).exists():
            raise CommandError(
                f"account {options['account_id']} is already registered; edit it in the console"
            )
        regions = split_regions(options["regions"])
        try:
            account = actions.do_add_account(
                actor=cli_actor(),
                account_id=options["account_id"],
                name=options["name"],
                role_arn=options["role_arn"],
                external_id=options["external_id"],
                regions=regions or [settings.AWS_DEFAULT_REGION],
                usage_regions=split_regions(options["usage_regions"]),
                environment=options["environment"],
                is_registry=options["registry"],
            )
        except ValidationError as exc:
            raise CommandError(f"invalid account: {describe(exc)}") from None
        self.stdout.write(f"added {account.account_id} {account.name}")

    def handle_list(self, options: dict[str, Any]) -> None:
        accounts = list(AwsAccount.objects.all())
        if options["json"]:
            self.stdout.write(json.dumps([as_json(account) for account in accounts], indent=2))
            return
        for account in accounts:
            self.stdout.write(
                f"{account.account_id}  {account.name:<20} {account.environment:<8} "
                f"{'registry ' if account.is_registry else ''}{','.join(account.regions):<20} "
                f"{'enabled' if account.enabled else 'disabled':<9} verification: {account.verification_state}"
            )

    def handle_verify(self, options: dict[str, Any]) -> None:
        if options["account_id"]:
            accounts = list(AwsAccount.objects.filter(account_id=options["account_id"]))
            if not accounts:
                raise CommandError(f"account {options['account_id']} is not registered")
        else:
            accounts = list(AwsAccount.objects.enabled())
        results = []
        for account in accounts:
            actions.do_verify_account(account, actor=cli_actor())
            results.append(as_json(account))
            if not options["json"]:
                line = (
                    "ok"
                    if account.last_verification_ok
                    else f"FAILED: {account.last_verification_error}"
                )
                self.stdout.write(f"{account.account_id} {account.name}: {line}")
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        failed = [account.account_id for account in accounts if not account.last_verification_ok]
        if failed:
            raise CommandError(f"verification failed for {', '.join(failed)}")


def split_regions(text: str) -> list[str]:
    return [region.strip() for region in text.split(",") if region.strip()]


def as_json(account: AwsAccount) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "name": account.name,
        "environment": account.environment,
        "role_arn": account.role_arn,
        "external_id_set": bool(account.external_id),
        "regions": account.regions,
        "usage_regions": account.usage_regions,
        "usage_scope": account.usage_scope,
        "is_registry": account.is_registry,
        "enabled": account.enabled,
        "last_verified_at": account.last_verified_at.isoformat()
        if account.last_verified_at
        else None,
        "last_verification_ok": account.last_verification_ok,
        "last_verification_error": account.last_verification_error,
    }
