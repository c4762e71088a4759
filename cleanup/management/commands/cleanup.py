import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Sum

from cleanup import actions, savings
from cleanup.actions import archive
from cleanup.models import CleanupAction, DeletionCheck, Image, Repository, validate_archive_days
from console import clock
from console.cli import cli_actor, describe

# The command line's spelling of each cleanup action.
ACTIONS = {
    "delete": CleanupAction.DELETE,
    "archive": CleanupAction.ARCHIVE,
    "archive-then-delete": CleanupAction.ARCHIVE_THEN_DELETE,
}


class Command(BaseCommand):
    help = "ECR image cleanup: sync the inventory, sweep, run due checks, approve deletions."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, parser_class=type(parser))
        sync = commands.add_parser(
            "sync",
            help="repositories, opt-in tags and images of every registry",
            called_from_command_line=True,
        )
        sync.add_argument("--json", action="store_true")
        sweep = commands.add_parser(
            "sweep", help="schedule checks for images no source uses", called_from_command_line=True
        )
        sweep.add_argument("--dry-run", action="store_true", help="print what would be scheduled")
        sweep.add_argument("--json", action="store_true")
        run_due = commands.add_parser(
            "run-due", help="decide the checks that are due now", called_from_command_line=True
        )
        run_due.add_argument("--json", action="store_true")
        approve = commands.add_parser(
            "approve", help="approve checks awaiting approval", called_from_command_line=True
        )
        approve.add_argument("check_ids", nargs="*", type=int, metavar="CHECK_ID")
        approve.add_argument("--all", action="store_true", help="every check awaiting approval")
        approve.add_argument("--json", action="store_true")
        status = commands.add_parser(
            "status",
            help="checks by status, bytes reclaimable and reclaimed",
            called_from_command_line=True,
        )
        status.add_argument("--json", action="store_true")
        restore = commands.add_parser(
            "restore",
            help="restore an archived image to ECR's standard storage",
            called_from_command_line=True,
        )
        restore.add_argument("image", metavar="ID|DIGEST", help="image id, or digest (12+ hex)")
        restore.add_argument("--reason", default="", help="why (in the audit history)")
        restore.add_argument("--json", action="store_true")
        set_action = commands.add_parser(
            "set-action",
            help="what approved checks of a repository do: delete, archive, archive-then-delete",
            called_from_command_line=True,
        )
        set_action.add_argument("repository", metavar="REPOSITORY", help="name or id")
        set_action.add_argument("action", choices=sorted(ACTIONS))
        set_action.add_argument(
            "--after-days", type=int, help="archive-then-delete: days in the archive (90 or more)"
        )
        set_action.add_argument(
            "--auto-restore",
            choices=["on", "off"],
            help="restore archived images a usage source references again (default: unchanged)",
        )
        set_action.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "handle_" + options["command"].replace("-", "_"))(options)

    def emit(self, options: dict[str, Any], data: object, lines: list[str]) -> None:
        if options.get("json"):
            self.stdout.write(json.dumps(data, indent=2, default=str))
        else:
            for line in lines:
                self.stdout.write(line)

    def handle_sync(self, options: dict[str, Any]) -> None:
        result = actions.do_sync_inventory(actor=cli_actor())
        data = {
            "repositories": result.repositories,
            "images": result.images,
            "vanished": result.vanished,
            "errors": result.errors,
        }
        self.emit(
            options,
            data,
            [
                f"{result.repositories} repositories, {result.images} images, {result.vanished} vanished"
            ]
            + [f"error: {e}" for e in result.errors],
        )
        if result.errors:
            raise CommandError("sync could not read everything: " + "; ".join(result.errors))

    def handle_sweep(self, options: dict[str, Any]) -> None:
        result = actions.do_sweep(actor=cli_actor(), dry_run=options["dry_run"])
        if result.errors:
            raise CommandError(
                "a usage source did not answer, nothing scheduled: " + "; ".join(result.errors)
            )
        images = [
            {
                "repository": i.repository.name,
                "digest": i.digest,
                "tags": i.tags,
                "bytes": i.size_bytes,
            }
            for i in result.scheduled
        ]
        verb = "would schedule" if options["dry_run"] else "scheduled"
        lines = [
            f"{i['repository']}@{i['digest']} {','.join(i['tags']) or 'untagged'} {i['bytes']}"
            for i in images
        ]
        lines.append(
            f"{verb} {len(images)} checks, {result.bytes} bytes in all ({result.in_use} images in use)"
        )
        self.emit(
            options,
            {
                "dry_run": options["dry_run"],
                "scheduled": images,
                "bytes": result.bytes,
                "in_use": result.in_use,
            },
            lines,
        )

    def handle_run_due(self, options: dict[str, Any]) -> None:
        result = actions.do_run_due_checks(actor=cli_actor())
        data = {
            "decided": dict(result.decided),
            "snapshot": result.snapshot_id,
            "errors": result.errors,
        }
        lines = [f"{status}: {count}" for status, count in result.decided.items()] or [
            "nothing due"
        ]
        self.emit(options, data, lines + [f"error: {e}" for e in result.errors])

    def handle_approve(self, options: dict[str, Any]) -> None:
        if options["all"] == bool(options["check_ids"]):
            raise CommandError("give CHECK_ID... or --all (not both)")
        waiting = DeletionCheck.objects.filter(status=DeletionCheck.Status.AWAITING_APPROVAL)
        ids = list(waiting.values_list("id", flat=True)) if options["all"] else options["check_ids"]
        missing = sorted(set(ids) - set(waiting.filter(id__in=ids).values_list("id", flat=True)))
        if missing and not options["all"]:
            raise CommandError(f"not awaiting approval: {', '.join(map(str, missing))}")
        approved = actions.do_approve_checks(ids, actor=cli_actor())
        final = {
            c.pk: c.status for c in DeletionCheck.objects.filter(pk__in=[c.pk for c in approved])
        }
        self.emit(
            options,
            {"approved": [c.pk for c in approved], "status": final},
            [f"check {pk}: {status}" for pk, status in final.items()] or ["nothing to approve"],
        )

    def handle_status(self, options: dict[str, Any]) -> None:
        counts = dict(
            DeletionCheck.objects.values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        reclaimable = (
            DeletionCheck.objects.filter(status="awaiting_approval").aggregate(
                b=Sum("image__size_bytes")
            )["b"]
            or 0
        )
        reclaimed = Repository.objects.bytes_reclaimed()
        opted = Repository.objects.filter(opted_in=True, deleted_at__isnull=True).count()
        figures = savings.savings(now=clock.now())
        data = {
            "checks": counts,
            "bytes_reclaimable": reclaimable,
            "bytes_reclaimed": reclaimed,
            "opted_in_repositories": opted,
            "savings": figures.as_dict(),
        }
        lines = [f"{status}: {count}" for status, count in sorted(counts.items())]
        lines += [
            f"opted-in repositories: {opted}",
            f"reclaimable: {reclaimable} bytes",
            f"reclaimed: {reclaimed} bytes",
            f"archived: {figures.archived_images} images, {figures.archived_bytes} bytes",
            f"saved per month: {figures.saved_per_month:.2f} USD "
            f"(deleted {figures.saved_by_deletion_per_month:.2f}, "
            f"archived {figures.saved_by_archive_per_month:.2f})",
            f"90-day archive minimum: {figures.minimum_charges:.2f} USD charged, "
            f"{figures.minimum_still_due:.2f} USD if every archived image left today",
        ]
        self.emit(options, data, lines)

    def handle_restore(self, options: dict[str, Any]) -> None:
        try:
            image = archive.find_image(options["image"])
        except Image.DoesNotExist:
            raise CommandError(f"no image {options['image']}") from None
        except Image.MultipleObjectsReturned:
            raise CommandError(
                f"{options['image']} names several images: give more digits"
            ) from None
        reason = options["reason"].strip() or "restored from the command line"
        try:
            restore = archive.do_restore_image(image, actor=cli_actor(), reason=reason)
        except archive.RestoreRefused as exc:
            raise CommandError(str(exc)) from None
        data = {
            "restore": restore.pk,
            "image": image.pk,
            "digest": image.digest,
            "status": restore.status,
            "error": restore.error,
        }
        self.emit(options, data, [f"{image.label}: restore {restore.pk} {restore.status}"])
        if restore.status == restore.Status.FAILED:
            raise CommandError(f"ECR refused the restore: {restore.error}")

    def handle_set_action(self, options: dict[str, Any]) -> None:
        repository = self._repository(options["repository"])
        action = ACTIONS[options["action"]]
        days = options["after_days"]
        changes: dict[str, Any] = {"cleanup_action": action}
        if action == CleanupAction.ARCHIVE_THEN_DELETE:
            try:
                validate_archive_days(days)
            except ValidationError as exc:
                raise CommandError(describe(exc)) from None
        if days is not None:
            changes["archive_delete_after_days"] = days
        if options["auto_restore"]:
            changes["auto_restore"] = options["auto_restore"] == "on"
        try:
            changed = actions.do_update_policy(repository, actor=cli_actor(), **changes)
        except ValidationError as exc:
            raise CommandError(describe(exc)) from None
        data = {
            "repository": repository.name,
            "cleanup_action": repository.cleanup_action,
            "archive_delete_after_days": repository.archive_delete_after_days,
            "auto_restore": repository.auto_restore,
            "changed": changed,
        }
        summary = f"{repository.name}: {repository.get_cleanup_action_display()}"
        if repository.archive_period:
            summary += f" ({repository.archive_period.days} days)"
        self.emit(options, data, [summary + ("" if changed else " (unchanged)")])

    def _repository(self, ref: str) -> Repository:
        found = Repository.objects.filter(deleted_at__isnull=True).select_related("account")
        matches = list(found.filter(pk=int(ref)) if ref.isdigit() else found.filter(name=ref))
        if not matches:
            raise CommandError(f"no repository {ref}")
        if len(matches) > 1:
            ids = ", ".join(f"{r.pk} ({r.account.account_id} {r.region})" for r in matches)
            raise CommandError(f"{ref} names several repositories; give the id: {ids}")
        return matches[0]
