import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import organizations
from accounts.forms import IdListField, RegionsField
from accounts.models import Organization, OrganizationMember
from console.cli import cli_actor, describe

# Option -> setting; the values go through the same model validators as the console's form.
OPTIONS = {
    "role_arn": "--role-arn",
    "external_id": "--external-id",
    "member_role_name": "--member-role-name",
    "member_external_id": "--member-external-id",
    "include_ous": "--include",
    "exclude_ous": "--exclude",
    "environment": "--environment",
    "regions": "--regions",
}
LISTS: dict[str, RegionsField] = {
    "include_ous": IdListField(required=False),
    "exclude_ous": IdListField(required=False),
    "regions": RegionsField(required=False),
}


class Command(BaseCommand):
    help = "Connect the AWS Organization whose accounts the console follows; show, edit, read, disconnect."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, parser_class=type(parser))
        for name, text in (("connect", "connect the organization"), ("edit", "change settings")):
            sub = commands.add_parser(name, help=text, called_from_command_line=True)
            sub.add_argument(
                "--role-arn", required=name == "connect", help="the organizations role to assume"
            )
            sub.add_argument("--external-id", help="external id of the organizations role")
            sub.add_argument(
                "--member-role-name", help="role the workload StackSet creates in every account"
            )
            sub.add_argument("--member-external-id", help="the StackSet's ExternalId")
            sub.add_argument("--include", help="roots or units to follow (r-..., ou-...-...)")
            sub.add_argument("--exclude", help="units to leave out (ou-...-...)")
            sub.add_argument("--environment", help="environment label of the accounts it adds")
            sub.add_argument("--regions", help="home regions of the accounts it adds")
        show = commands.add_parser(
            "show", help="settings and last read", called_from_command_line=True
        )
        show.add_argument("--json", action="store_true")
        sync = commands.add_parser(
            "sync", help="read the organization now", called_from_command_line=True
        )
        sync.add_argument("--json", action="store_true")
        commands.add_parser("disconnect", help="stop following it", called_from_command_line=True)

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['command']}")(options)

    def handle_connect(self, options: dict[str, Any]) -> None:
        try:
            organizations.do_connect_organization(actor=cli_actor(), **settings_from(options))
        except ValidationError as exc:
            raise CommandError(f"not connected: {describe(exc)}") from None
        self.stdout.write("organization connected; the worker reads it within 15 minutes")

    def handle_edit(self, options: dict[str, Any]) -> None:
        organization = connected()
        try:
            changed = organizations.do_update_organization(
                organization, actor=cli_actor(), **settings_from(options)
            )
        except ValidationError as exc:
            raise CommandError(f"not saved: {describe(exc)}") from None
        self.stdout.write(f"changed: {', '.join(changed)}" if changed else "nothing changed")

    def handle_show(self, options: dict[str, Any]) -> None:
        organization = connected()
        shown = as_json(organization)
        if options["json"]:
            self.stdout.write(json.dumps(shown, indent=2))
            return
        for key, value in shown.items():
            self.stdout.write(f"{key}: {value}")

    def handle_sync(self, options: dict[str, Any]) -> None:
        connected()
        result = organizations.do_sync_organization(actor=cli_actor())
        if options["json"]:
            self.stdout.write(json.dumps({"ran": result.ran, **result.summary()}, indent=2))
        else:
            self.stdout.write(str(result))
        if not result.ran or not result.read_ok:
            raise CommandError(str(result))

    def handle_disconnect(self, options: dict[str, Any]) -> None:
        kept = organizations.do_disconnect_organization(connected(), actor=cli_actor())
        self.stdout.write(f"disconnected; its {kept} accounts stay registered as they are")


def connected() -> Organization:
    organization = organizations.get_organization()
    if organization is None:
        raise CommandError("no organization is connected (manage.py aws_organization connect)")
    return organization


def settings_from(options: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line, as the form would clean them."""
    given = {}
    for setting, flag in OPTIONS.items():
        value = options.get(flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        given[setting] = LISTS[setting].to_python(value) if setting in LISTS else value.strip()
    return given


def as_json(organization: Organization) -> dict[str, Any]:
    counts = {
        state: OrganizationMember.objects.filter(state=state).count()
        for state in OrganizationMember.State
    }
    return {
        "role_arn": organization.role_arn,
        "external_id_set": bool(organization.external_id),
        "member_role_name": organization.member_role_name,
        "member_external_id_set": bool(organization.member_external_id),
        "include": organization.include_ous,
        "exclude": organization.exclude_ous,
        "environment": organization.environment,
        "regions": organization.regions,
        "last_read_at": organization.last_read_at.isoformat()
        if organization.last_read_at
        else None,
        "last_read": organization.read_state,
        "last_read_error": organization.last_read_error,
        "last_summary": organization.last_summary,
        "accounts": counts,
    }
