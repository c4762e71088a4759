"""Opening checks: a task definition became INACTIVE somewhere, or an operator asks. Each image
has at most one open check; a later use pushes its due time out again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

import audit
from accounts.models import AwsAccount
from cleanup import aws, usage
from cleanup.actions.common import Status, check_target, repository_target
from cleanup.actions.inventory import read_repository_state
from cleanup.models import DeletionCheck, Image, Repository
from console import clock


def schedule_check(
    image: Image, *, trigger: str, ref: str, due_at: datetime, now: datetime, actor: str
) -> DeletionCheck:
    """Upsert the image's one open check. A later trigger moves the due time out again, and a
    check awaiting approval goes back to scheduled (its evidence is older than this use)."""
    check = DeletionCheck.objects.filter(image=image, status__in=DeletionCheck.OPEN).first()
    details = {"trigger": trigger, "ref": ref, "due_at": due_at.isoformat()}
    if check is None:
        check = DeletionCheck(
            image=image,
            trigger=trigger,
            trigger_ref=ref,
            due_at=due_at,
            created_at=now,
            updated_at=now,
        )
        check.add_to_timeline(
            now, Status.SCHEDULED, f"{trigger}: {ref}, due {due_at:%Y-%m-%d %H:%M:%S}", actor
        )
        check.save()
        audit.record(actor, "check.scheduled", details=details, at=now, **check_target(check))
        return check
    check.due_at = due_at
    check.trigger, check.trigger_ref = trigger, ref
    check.updated_at = now
    if check.status in DeletionCheck.CANCELLABLE:
        check.status = Status.SCHEDULED
        check.approved_by = ""
    # A running decision or an approved deletion sees the new last use and waits (grace rule).
    check.add_to_timeline(
        now, check.status, f"rescheduled by {trigger}: {ref}, due {due_at:%Y-%m-%d %H:%M:%S}", actor
    )
    check.save(
        update_fields=[
            "due_at",
            "trigger",
            "trigger_ref",
            "updated_at",
            "status",
            "approved_by",
            "timeline",
        ]
    )
    audit.record(actor, "check.rescheduled", details=details, at=now, **check_target(check))
    return check


@dataclass
class ScheduleOutcome:
    scheduled: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.scheduled:
            parts.append("scheduled checks for " + ", ".join(self.scheduled))
        if self.ignored:
            parts.append("ignored " + "; ".join(self.ignored))
        return "; ".join(parts)


def do_schedule_for_inactive_task_definitions(
    *,
    account_id: str,
    region: str,
    definitions: list[tuple[str, list[str] | None]],
    actor: str,
    now: datetime | None = None,
) -> ScheduleOutcome:
    """A task definition became INACTIVE: for each of its images that lives in a registered,
    opted-in repository, upsert the image's check due after the grace period. ``definitions``
    holds (task definition, images or None when the event did not carry them)."""
    now = now or clock.now()
    outcome = ScheduleOutcome()
    states: dict[int, usage.RepositoryState] = {}
    for definition, images in definitions:
        if images is None:
            # Only an event without the revision's images needs the account (to describe it):
            # most carry them, and a burst of thousands should not look the account up each time.
            source_account = AwsAccount.objects.filter(account_id=account_id).first()
            if source_account is None:
                outcome.ignored.append(
                    f"{definition}: account {account_id} is not registered, its images are unknown"
                )
                continue
            described = aws.describe_task_definition(source_account, region, definition)
            if described is None:
                outcome.ignored.append(f"{definition}: not found in {account_id}/{region}")
                continue
            images = described[1]
        for uri in images:
            _schedule_image(uri, definition, states, outcome, actor, now)
    return outcome


def _opted_in_repository_exists(registry: str, region: str, name: str) -> bool:
    """The question most events of a burst end on, asked without building a queryset: in a burst
    of thousands, composing the ORM query cost more than the database's answer."""
    # Only the models' table names are formatted in; the values are parameters.
    sql = (
        f"SELECT 1 FROM {Repository._meta.db_table} r"  # noqa: S608
        f" JOIN {AwsAccount._meta.db_table} a ON a.id = r.account_id"
        " WHERE a.account_id = %s AND r.region = %s AND r.name = %s"
        " AND r.deleted_at IS NULL AND r.opted_in LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [registry, region, name])
        return cursor.fetchone() is not None


def _schedule_image(
    uri: str,
    definition: str,
    states: dict[int, usage.RepositoryState],
    outcome: ScheduleOutcome,
    actor: str,
    now: datetime,
) -> None:
    ref = usage.parse_image(uri)
    if ref is None:
        outcome.ignored.append(f"image {uri} is not in an ECR registry")
        return
    # Most images of a burst are in repositories nobody opted in: a small existence query
    # answers for them (the full row with its account costs several times more to build), and
    # ECR is read only for an opted-in one.
    if not _opted_in_repository_exists(ref.registry, ref.region, ref.repository):
        outcome.ignored.append(f"image {uri} is not in a registered opted-in repository")
        return
    repository = (
        Repository.objects.select_related("account")
        .filter(
            account__account_id=ref.registry,
            region=ref.region,
            name=ref.repository,
            deleted_at__isnull=True,
            opted_in=True,
        )
        .first()
    )
    if repository is None:
        outcome.ignored.append(f"image {uri} is not in a registered opted-in repository")
        return
    if repository.pk not in states:
        states[repository.pk] = read_repository_state(repository)
    state = states[repository.pk]
    if not state.opted_in:
        with transaction.atomic():
            repository.opted_in = False
            repository.save(update_fields=["opted_in"])
            audit.record(
                actor,
                "repository.opted_out",
                details={"source": "ECR tag read when scheduling"},
                at=now,
                **repository_target(repository),
            )
        outcome.ignored.append(
            f"image {uri} is not in a registered opted-in repository (opt-in tag removed)"
        )
        return
    digest = ref.digest or state.tag_to_digest.get(ref.tag or "")
    info = state.images.get(digest or "")
    if info is None:
        outcome.ignored.append(f"image {uri} is no longer in ECR")
        return
    with transaction.atomic():
        image, _ = Image.objects.get_or_create(
            repository=repository,
            digest=info.digest,
            defaults={
                "tags": info.tags,
                "pushed_at": info.pushed_at,
                "size_bytes": info.size_bytes,
                "media_type": info.media_type,
                "child_digests": info.child_digests,
                "first_seen_at": now,
            },
        )
        # The deregistered revision used the image until now: that is its last use.
        image.last_used_at = max(filter(None, [image.last_used_at, now]))
        image.save(update_fields=["last_used_at"])
        schedule_check(
            image,
            trigger=DeletionCheck.Trigger.TASK_DEFINITION_INACTIVE,
            ref=definition,
            due_at=now + repository.effective_grace,
            now=now,
            actor=actor,
        )
    outcome.scheduled.append(uri if ref.digest else f"{uri} ({info.digest[:19]})")


def do_request_check(image: Image, *, actor: str, now: datetime | None = None) -> DeletionCheck:
    """An operator asks for a decision now (trigger: manual)."""
    now = now or clock.now()
    with transaction.atomic():
        return schedule_check(
            image,
            trigger=DeletionCheck.Trigger.MANUAL,
            ref=f"requested by {actor}",
            due_at=now,
            now=now,
            actor=actor,
        )
