"""Every change of the cleanup app: inventory sync, opt-in, scheduling, decisions, approvals and
deletions. Each writes its audit events in the transaction of the change."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

import audit
from accounts.models import AwsAccount
from cleanup import aws, rules, usage
from cleanup.models import DeletionCheck, Image, RegistrySettings, Repository, UsageSnapshot
from console import clock

log = logging.getLogger(__name__)

WORKER = "worker"
DECIDE_BATCH = 10_000
DECIDE_CHUNK = 500
CLAIM_LEASE = timedelta(minutes=15)
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
Status = DeletionCheck.Status


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def opt_in_tag() -> tuple[str, str]:
    key, value = settings.CLEANUP_OPT_IN_TAG
    return key, value


def is_opted_in(tags: dict[str, str] | None) -> bool:
    key, value = opt_in_tag()
    return bool(tags) and tags.get(key) == value


def _repo_target(repository: Repository) -> dict[str, str]:
    return {
        "target_type": "ecr_repository",
        "target_id": repository.arn,
        "target_label": repository.name,
        "account_id": repository.account.account_id,
    }


def _check_target(check: DeletionCheck) -> dict[str, Any]:
    return {
        "target_type": "deletion_check",
        "target_id": check.pk,
        "target_label": check.image.label,
        "account_id": check.image.repository.account.account_id,
    }


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Inventory --------------------------------------------------------------------------------------


@dataclass
class SyncResult:
    repositories: int = 0
    images: int = 0
    vanished: int = 0
    errors: list[str] = field(default_factory=list)


def do_sync_inventory(*, actor: str = WORKER, now: datetime | None = None) -> SyncResult:
    """Read repositories (tags, mutability, replication) and images from every registry account
    and region. Images that vanished from ECR are marked deleted, never forgotten."""
    now = now or clock.now()
    result = SyncResult()
    for account in AwsAccount.objects.registries():
        for region in account.regions:
            try:
                found = aws.list_repositories(account, region)
                try:
                    replication = aws.replication_destinations(account, region)
                except aws.CleanupAwsError:
                    replication = []
            except aws.CleanupAwsError as exc:
                result.errors.append(str(exc))
                continue
            seen = set()
            for info in found:
                repository = _upsert_repository(account, region, info, replication, actor, now)
                seen.add(repository.pk)
                result.repositories += 1
                try:
                    images = aws.describe_images(account, region, info.name)
                except aws.CleanupAwsError as exc:
                    result.errors.append(str(exc))
                    continue
                synced, vanished = sync_images(repository, images or [], now)
                result.images += synced
                result.vanished += vanished
            gone = Repository.objects.filter(
                account=account, region=region, deleted_at__isnull=True
            ).exclude(pk__in=seen)
            gone.update(deleted_at=now, opted_in=False)
    return result


def _upsert_repository(
    account, region, info: aws.RepositoryInfo, replication, actor, now
) -> Repository:
    opted_in = is_opted_in(info.tags)
    with transaction.atomic():
        repository, created = Repository.objects.get_or_create(
            account=account,
            region=region,
            name=info.name,
            defaults={
                "arn": info.arn,
                "uri": info.uri,
                "opted_in": opted_in,
                "last_synced_at": now,
            },
        )
        changed = not created and repository.opted_in != opted_in
        repository.arn, repository.uri = info.arn, info.uri
        repository.tag_mutability = info.tag_mutability
        repository.replication = replication
        repository.opted_in = opted_in
        repository.last_synced_at = now
        repository.deleted_at = None
        repository.save(
            update_fields=[
                "arn",
                "uri",
                "tag_mutability",
                "replication",
                "opted_in",
                "last_synced_at",
                "deleted_at",
            ]
        )
        if changed or (created and opted_in):
            audit.record(
                actor,
                "repository.opted_in" if opted_in else "repository.opted_out",
                details={"source": "ECR tag read by sync", "tag": "=".join(opt_in_tag())},
                at=now,
                **_repo_target(repository),
            )
    return repository


def sync_images(
    repository: Repository, images: list[aws.ImageInfo], now: datetime
) -> tuple[int, int]:
    """Make the ``Image`` rows of the repository match ECR's answer; returns (synced, vanished)."""
    existing = {image.digest: image for image in Image.objects.filter(repository=repository)}
    create, update = [], []
    for info in images:
        row = existing.get(info.digest)
        values = {
            "tags": info.tags,
            "pushed_at": info.pushed_at,
            "size_bytes": info.size_bytes,
            "media_type": info.media_type,
            "child_digests": info.child_digests,
            "last_pulled_at": info.last_pulled_at,
            "deleted_at": None,
        }
        if row is None:
            create.append(
                Image(repository=repository, digest=info.digest, first_seen_at=now, **values)
            )
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            update.append(row)
    with transaction.atomic():
        Image.objects.bulk_create(create, batch_size=500)
        Image.objects.bulk_update(update, list(_IMAGE_SYNC_FIELDS), batch_size=500)
        present = {info.digest for info in images}
        vanished = [
            image.pk
            for digest, image in existing.items()
            if digest not in present and image.deleted_at is None
        ]
        for chunk in _chunks(vanished, 500):
            Image.objects.filter(pk__in=chunk).update(deleted_at=now)
            for check in DeletionCheck.objects.filter(
                image_id__in=chunk, status__in=["scheduled", "failed", "awaiting_approval"]
            ):
                _close(check, Status.CANCELLED, now, WORKER, "the image vanished from ECR")
    return len(images), len(vanished)


_IMAGE_SYNC_FIELDS = (
    "tags",
    "pushed_at",
    "size_bytes",
    "media_type",
    "child_digests",
    "last_pulled_at",
    "deleted_at",
)


def read_repository_state(repository: Repository) -> usage.RepositoryState:
    """The repository as ECR says now: the opt-in tag read again, and a fresh list of images."""
    account, region = repository.account, repository.region
    tags = aws.repository_tags(account, region, repository.arn)
    if tags is None:
        return usage.RepositoryState(opted_in=False, exists=False)
    images = aws.describe_images(account, region, repository.name)
    return usage.RepositoryState.build(is_opted_in(tags), images)


# Opt-in and policy -------------------------------------------------------------------------------


def do_set_opt_in(
    repository: Repository, *, opted_in: bool, actor: str, now: datetime | None = None
) -> bool:
    """Write or remove the opt-in tag in ECR (AWS stays the source of truth), then mirror it.
    Opting out cancels the open checks that are not being worked on."""
    now = now or clock.now()
    key, value = opt_in_tag()
    account, region = repository.account, repository.region
    if opted_in:
        aws.set_repository_tag(account, region, repository.arn, key, value)
    else:
        aws.remove_repository_tag(account, region, repository.arn, key)
    with transaction.atomic():
        changed = repository.opted_in != opted_in
        repository.opted_in = opted_in
        repository.save(update_fields=["opted_in"])
        audit.record(
            actor,
            "repository.opted_in" if opted_in else "repository.opted_out",
            details={"tag": f"{key}={value}", "changed": changed},
            at=now,
            **_repo_target(repository),
        )
        if not opted_in:
            checks = DeletionCheck.objects.filter(
                image__repository=repository,
                status__in=["scheduled", "failed", "awaiting_approval"],
            ).select_related("image__repository__account")
            for check in checks:
                _close(check, Status.CANCELLED, now, actor, "the repository was opted out")
    return changed


POLICY_FIELDS = ["grace_period", "require_approval", "keep_newest", "keep_tag_pattern"]


def do_update_policy(
    repository: Repository, *, actor: str, now: datetime | None = None, **changes: Any
) -> list[str]:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not a policy field: {', '.join(sorted(unknown))}")
    changed = [name for name, value in changes.items() if getattr(repository, name) != value]
    if not changed:
        return []
    before = {name: getattr(repository, name) for name in changed}
    with transaction.atomic():
        for name in changed:
            setattr(repository, name, changes[name])
        repository.full_clean(exclude=["account"])
        repository.save(update_fields=changed)
        audit.record(
            actor,
            "repository.policy_changed",
            details={
                name: {"from": str(before[name]), "to": str(changes[name])} for name in changed
            },
            at=now or clock.now(),
            **_repo_target(repository),
        )
    return changed


def do_protect_images(
    images: list[Image], *, actor: str, reason: str, now: datetime | None = None
) -> int:
    """Keep images for good. Their open checks that are not running are cancelled."""
    now = now or clock.now()
    count = 0
    with transaction.atomic():
        for image in images:
            if image.protected:
                continue
            image.protected, image.protected_by, image.protected_reason = True, actor, reason
            image.save(update_fields=["protected", "protected_by", "protected_reason"])
            audit.record(
                actor,
                "image.protected",
                target_type="ecr_image",
                target_id=image.digest,
                target_label=image.label,
                account_id=image.repository.account.account_id,
                details={"reason": reason, "repository": image.repository.name, "tags": image.tags},
                at=now,
            )
            for check in image.checks.filter(
                status__in=["scheduled", "failed", "awaiting_approval"]
            ):
                _close(check, Status.CANCELLED, now, actor, f"image protected: {reason}")
            count += 1
    return count


def do_unprotect_image(image: Image, *, actor: str, now: datetime | None = None) -> None:
    with transaction.atomic():
        image.protected, image.protected_by, image.protected_reason = False, "", ""
        image.save(update_fields=["protected", "protected_by", "protected_reason"])
        audit.record(
            actor,
            "image.unprotected",
            target_type="ecr_image",
            target_id=image.digest,
            target_label=image.label,
            account_id=image.repository.account.account_id,
            at=now or clock.now(),
        )


def do_save_registry_settings(
    account: AwsAccount, *, actor: str, **values: Any
) -> RegistrySettings:
    with transaction.atomic():
        row, _ = RegistrySettings.objects.get_or_create(account=account)
        for name, value in values.items():
            setattr(row, name, value)
        row.save(update_fields=list(values))
        audit.record(
            actor,
            "registry.cleanup_settings_changed",
            target_type="aws_account",
            target_id=account.account_id,
            target_label=account.name,
            account_id=account.account_id,
            details=values,
        )
    return row


# Scheduling --------------------------------------------------------------------------------------


def _close(check: DeletionCheck, status: str, now: datetime, actor: str, reason: str) -> None:
    check.status = status
    check.decision_reason = reason
    check.decided_by = actor
    check.decided_at = now
    check.updated_at = now
    check.claim = ""
    check.note(now, status, reason, actor)
    check.save(
        update_fields=[
            "status",
            "decision_reason",
            "decided_by",
            "decided_at",
            "updated_at",
            "claim",
            "timeline",
        ]
    )
    audit.record(
        actor,
        f"check.{status}",
        details={"reason": reason, "digest": check.image.digest},
        at=now,
        **_check_target(check),
    )


def schedule_check(
    image: Image, *, trigger: str, ref: str, due_at: datetime, now: datetime, actor: str
) -> DeletionCheck:
    """Upsert the image's one open check. A later trigger moves the due time out again, and a
    check awaiting approval goes back to scheduled (its evidence is older than this use)."""
    check = DeletionCheck.objects.filter(image=image, status__in=DeletionCheck.OPEN).first()
    if check is None:
        check = DeletionCheck(
            image=image,
            trigger=trigger,
            trigger_ref=ref,
            due_at=due_at,
            created_at=now,
            updated_at=now,
        )
        check.note(
            now, Status.SCHEDULED, f"{trigger}: {ref}, due {due_at:%Y-%m-%d %H:%M:%S}", actor
        )
        check.save()
        audit.record(
            actor,
            "check.scheduled",
            details={"trigger": trigger, "ref": ref, "due_at": due_at.isoformat()},
            at=now,
            **_check_target(check),
        )
        return check
    check.due_at = due_at
    check.trigger, check.trigger_ref = trigger, ref
    check.updated_at = now
    if check.status in {Status.SCHEDULED, Status.FAILED, Status.AWAITING_APPROVAL}:
        check.status = Status.SCHEDULED
        check.approved_by = ""
    # A running decision or an approved deletion sees the new last use and waits (grace rule).
    check.note(
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
    audit.record(
        actor,
        "check.rescheduled",
        details={"trigger": trigger, "ref": ref, "due_at": due_at.isoformat()},
        at=now,
        **_check_target(check),
    )
    return check


@dataclass
class ScheduleOutcome:
    scheduled: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def note(self) -> str:
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
    source_account = AwsAccount.objects.filter(account_id=account_id).first()
    states: dict[int, usage.RepositoryState] = {}
    for definition, images in definitions:
        if images is None:
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


def _schedule_image(uri, definition, states, outcome: ScheduleOutcome, actor, now) -> None:
    ref = usage.parse_image(uri)
    if ref is None:
        outcome.ignored.append(f"image {uri} is not in an ECR registry")
        return
    repository = (
        Repository.objects.select_related("account")
        .filter(
            account__account_id=ref.registry,
            region=ref.region,
            name=ref.repository,
            deleted_at__isnull=True,
        )
        .first()
    )
    if repository is None or not repository.opted_in:
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
                **_repo_target(repository),
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


# Deciding due checks -----------------------------------------------------------------------------


def claim_due_checks(now: datetime, limit: int = DECIDE_BATCH) -> tuple[str, list[int]]:
    """Take due checks so that no other worker takes them: ``select_for_update(skip_locked)``
    on PostgreSQL, a conditional update (only rows still in a due status) elsewhere."""
    token = uuid.uuid4().hex
    due = DeletionCheck.objects.filter(
        Q(status__in=[Status.SCHEDULED, Status.FAILED], due_at__lte=now)
        | Q(status=Status.RUNNING, claimed_at__lt=now - CLAIM_LEASE)
    ).order_by("due_at", "id")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
            for chunk in _chunks(ids, 1000):
                DeletionCheck.objects.filter(id__in=chunk).update(
                    status=Status.RUNNING, claim=token, claimed_at=now
                )
        return token, ids
    candidates = list(due.values_list("id", "status")[:limit])
    claimed: list[int] = []
    for status in {status for _, status in candidates}:
        ids = [pk for pk, s in candidates if s == status]
        for chunk in _chunks(ids, 900):
            still = DeletionCheck.objects.filter(id__in=chunk, status=status)
            if status == Status.RUNNING:
                still = still.filter(claimed_at__lt=now - CLAIM_LEASE)
            else:
                still = still.filter(due_at__lte=now)
            still.update(status=Status.RUNNING, claim=token, claimed_at=now)
    claimed = list(DeletionCheck.objects.filter(claim=token).values_list("id", flat=True))
    return token, claimed


@dataclass
class DecideResult:
    decided: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    snapshot_id: int | None = None
    errors: list[str] = field(default_factory=list)
    to_delete: list[int] = field(default_factory=list)


def do_run_due_checks(
    *, actor: str = WORKER, now: datetime | None = None, limit: int = DECIDE_BATCH
) -> DecideResult:
    now = now or clock.now()
    token, ids = claim_due_checks(now, limit)
    if not ids:
        return DecideResult()
    return decide_claimed(token, actor=actor, now=now)


def _load(checks_qs) -> list[DeletionCheck]:
    return list(checks_qs.select_related("image__repository__account"))


def _states_for(
    repositories: list[Repository],
) -> tuple[dict[int, usage.RepositoryState], dict[int, str]]:
    states, errors = {}, {}
    for repository in repositories:
        try:
            states[repository.pk] = read_repository_state(repository)
        except aws.CleanupAwsError as exc:
            errors[repository.pk] = str(exc)
    return states, errors


def _config_uris(
    checks: list[DeletionCheck], states: dict[int, usage.RepositoryState]
) -> dict[str, list[str]]:
    uris: dict[str, list[str]] = defaultdict(list)
    for check in checks:
        repository = check.image.repository
        state = states.get(repository.pk)
        digests = {check.image.digest, *check.image.child_digests}
        uris[repository.account.account_id] += [f"{repository.uri}@{digest}" for digest in digests]
        if state:
            uris[repository.account.account_id] += [
                f"{repository.uri}:{tag}" for tag in state.tags_of(digests)
            ]
    return uris


def _save_snapshot(snapshot: usage.Snapshot, purpose: str) -> UsageSnapshot:
    return UsageSnapshot.objects.create(
        taken_at=snapshot.taken_at,
        purpose=purpose,
        complete=snapshot.complete,
        sources=snapshot.sources_json(),
        reference_count=sum(len(refs) for refs in snapshot.by_repository.values()),
    )


def _protected_digests(repositories: list[Repository]) -> dict[int, set[str]]:
    protected: dict[int, set[str]] = defaultdict(set)
    rows = Image.objects.filter(repository__in=repositories, protected=True).values_list(
        "repository_id", "digest"
    )
    for repository_id, digest in rows:
        protected[repository_id].add(digest)
    return protected


def _evidence(verdict: rules.Verdict, snapshot: usage.Snapshot, stored: UsageSnapshot) -> dict:
    return {
        "snapshot_id": stored.pk,
        "taken_at": snapshot.taken_at.isoformat(),
        "complete": snapshot.complete,
        "errors": snapshot.errors,
        "scope": snapshot.scope_json(),
        "outcome": verdict.outcome,
        "reason": verdict.reason,
        "references": [ref.as_dict() for ref in verdict.references[:50]],
    }


def decide_claimed(token: str, *, actor: str, now: datetime) -> DecideResult:
    """Decide every check this worker claimed from one usage snapshot for the whole batch."""
    checks = _load(DeletionCheck.objects.filter(claim=token, status=Status.RUNNING))
    repositories = list(
        {check.image.repository.pk: check.image.repository for check in checks}.values()
    )
    states, state_errors = _states_for(repositories)
    snapshot = usage.take_snapshot(now, config_uris=_config_uris(checks, states))
    stored = _save_snapshot(snapshot, "decide")
    protected = _protected_digests(repositories)
    result = DecideResult(
        snapshot_id=stored.pk, errors=snapshot.errors + list(state_errors.values())
    )
    # Commit in chunks: SQLite has one writer, and the web must not wait for a whole batch.
    for chunk in _chunks(checks, DECIDE_CHUNK):
        used: dict[int, list[dict]] = {}
        to_delete: list[int] = []
        with transaction.atomic():
            for check in chunk:
                repository = check.image.repository
                verdict = rules.judge(
                    check.image,
                    repository,
                    states.get(repository.pk),
                    state_errors.get(repository.pk, ""),
                    snapshot,
                    now,
                    protected=protected.get(repository.pk, set()),
                )
                _apply_decision(check, verdict, snapshot, stored, actor, now, result)
                if verdict.outcome == rules.IN_USE:
                    used[check.image.pk] = [ref.as_dict() for ref in verdict.references[:20]]
                if check.status == Status.APPROVED:
                    to_delete.append(check.pk)
            _mark_used(used, now)
            if to_delete:
                transaction.on_commit(lambda ids=to_delete: enqueue_deletion(ids))
    return result


def _mark_used(used: dict[int, list[dict]], now: datetime) -> None:
    rows = list(Image.objects.filter(pk__in=list(used)))
    for row in rows:
        row.last_used_at = now
        row.usage = used[row.pk]
    Image.objects.bulk_update(rows, ["last_used_at", "usage"], batch_size=500)


def _apply_decision(
    check, verdict: rules.Verdict, snapshot, stored, actor, now, result: DecideResult
) -> None:
    check.evidence = _evidence(verdict, snapshot, stored)
    check.snapshot = stored
    check.claim = ""
    check.updated_at = now
    fields = ["evidence", "snapshot", "claim", "updated_at", "status", "timeline"]
    outcome = verdict.outcome
    if outcome == rules.UNKNOWN:
        check.attempts += 1
        check.status = Status.FAILED
        check.last_error = verdict.reason
        check.due_at = now + backoff(check.attempts)
        check.note(
            now,
            Status.FAILED,
            f"{verdict.reason} (retry at {check.due_at:%Y-%m-%d %H:%M:%S})",
            actor,
        )
        fields += ["attempts", "last_error", "due_at"]
        action = "check.failed"
    elif outcome == rules.TOO_RECENT:
        check.status = Status.SCHEDULED
        check.due_at = verdict.retry_at
        check.note(now, Status.SCHEDULED, verdict.reason, actor)
        fields += ["due_at"]
        action = "check.rescheduled"
    elif outcome == rules.UNUSED:
        check.last_error = ""
        if check.image.repository.approval_required and not check.approved_by:
            check.status = Status.AWAITING_APPROVAL
            check.note(now, Status.AWAITING_APPROVAL, verdict.reason, actor)
            action = "check.awaiting_approval"
        else:
            check.status = Status.APPROVED
            why = (
                f"approved earlier by {check.approved_by}"
                if check.approved_by
                else "the repository does not require approval"
            )
            check.note(now, Status.APPROVED, f"{verdict.reason}; {why}", actor)
            result.to_delete.append(check.pk)
            action = "check.approved"
        fields += ["last_error"]
    else:
        check.status = Status.IN_USE if outcome in rules.USED else Status.CANCELLED
        check.decided_by, check.decided_at, check.decision_reason = actor, now, verdict.reason
        check.note(now, check.status, verdict.reason, actor)
        fields += ["decided_by", "decided_at", "decision_reason"]
        action = f"check.{check.status}"
        if outcome == rules.GONE and check.image.deleted_at is None:
            check.image.deleted_at = now
            check.image.save(update_fields=["deleted_at"])
    check.save(update_fields=fields)
    result.decided[check.status] += 1
    audit.record(
        actor,
        action,
        details={
            "outcome": outcome,
            "reason": verdict.reason,
            "references": len(verdict.references),
            "digest": check.image.digest,
        },
        at=now,
        **_check_target(check),
    )


def enqueue_deletion(check_ids: list[int]) -> None:
    from django_q.tasks import async_task

    async_task(
        "cleanup.tasks.delete_approved", check_ids, task_name="cleanup: delete approved images"
    )


# Approvals ---------------------------------------------------------------------------------------


def do_approve_checks(
    check_ids: list[int], *, actor: str, now: datetime | None = None
) -> list[DeletionCheck]:
    """Approve checks awaiting approval; the deletion is enqueued when the transaction commits
    and takes its own fresh usage snapshot."""
    now = now or clock.now()
    with transaction.atomic():
        rows = DeletionCheck.objects.filter(pk__in=check_ids, status=Status.AWAITING_APPROVAL)
        if connection.vendor == "postgresql":
            rows = rows.select_for_update()
        approved = _load(rows)
        for check in approved:
            check.status = Status.APPROVED
            check.approved_by = actor
            check.decided_by, check.decided_at, check.decision_reason = actor, now, "approved"
            check.updated_at = now
            check.note(now, Status.APPROVED, "approved", actor)
            check.save(
                update_fields=[
                    "status",
                    "approved_by",
                    "decided_by",
                    "decided_at",
                    "decision_reason",
                    "updated_at",
                    "timeline",
                ]
            )
            audit.record(
                actor,
                "check.approved",
                details={
                    "digest": check.image.digest,
                    "tags": check.image.tags,
                    "bytes": check.image.size_bytes,
                },
                at=now,
                **_check_target(check),
            )
        if approved:
            ids = [check.pk for check in approved]
            transaction.on_commit(lambda: enqueue_deletion(ids))
    return approved


def do_reject_checks(
    check_ids: list[int], *, actor: str, reason: str, now: datetime | None = None
) -> list[DeletionCheck]:
    if not reason.strip():
        raise ValueError("a rejection needs a reason")
    now = now or clock.now()
    with transaction.atomic():
        rows = _load(
            DeletionCheck.objects.filter(
                pk__in=check_ids,
                status__in=[Status.AWAITING_APPROVAL, Status.SCHEDULED, Status.FAILED],
            )
        )
        for check in rows:
            _close(check, Status.REJECTED, now, actor, reason.strip())
    return rows


# Deletion ----------------------------------------------------------------------------------------


@dataclass
class DeleteResult:
    deleted: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    would_delete: list[int] = field(default_factory=list)
    calls: int = 0
    bytes_reclaimed: int = 0


def do_delete_images(check_ids: list[int], *, now: datetime | None = None) -> DeleteResult:
    """Delete the images of approved checks. Re-check everything here: the approval may be hours
    old, a tag may have moved, a service may have started using the image, the repository may
    have been opted out. Deletes by digest only, at most 100 ids a call, indexes before children."""
    now = now or clock.now()
    token = uuid.uuid4().hex
    DeletionCheck.objects.filter(pk__in=check_ids, status=Status.APPROVED).filter(
        Q(claim="") | Q(claimed_at__lt=now - CLAIM_LEASE)
    ).update(claim=token, claimed_at=now)
    checks = _load(DeletionCheck.objects.filter(claim=token, status=Status.APPROVED))
    result = DeleteResult()
    if not checks:
        return result
    by_repository: dict[int, list[DeletionCheck]] = defaultdict(list)
    for check in checks:
        by_repository[check.image.repository.pk].append(check)
    repositories = [group[0].image.repository for group in by_repository.values()]
    states, state_errors = _states_for(repositories)
    snapshot = usage.take_snapshot(now, config_uris=_config_uris(checks, states))
    stored = _save_snapshot(snapshot, "delete")
    protected = _protected_digests(repositories)
    for repository in repositories:
        _delete_in_repository(
            repository,
            by_repository[repository.pk],
            states.get(repository.pk),
            state_errors.get(repository.pk, ""),
            snapshot,
            stored,
            protected.get(repository.pk, set()),
            now,
            result,
        )
    return result


def _delete_in_repository(
    repository, checks, state, state_error, snapshot, stored, protected, now, result
) -> None:
    # Read the image rows again: an operator may have protected one since the checks were loaded.
    fresh = Image.objects.filter(pk__in=[check.image_id for check in checks]).in_bulk()
    for check in checks:
        check.image.protected = fresh[check.image_id].protected
        check.image.last_used_at = fresh[check.image_id].last_used_at
    protected = protected | {image.digest for image in fresh.values() if image.protected}
    deleted: set[str] = set()
    present = set(state.images) if state else set()
    # Indexes and single images first, then index children once their index is gone.
    first = [check for check in checks if not (state and state.parents.get(check.image.digest))]
    second = [check for check in checks if check not in first]
    for phase in (first, second):
        ready: list[tuple[DeletionCheck, rules.Verdict]] = []
        for check in phase:
            verdict = rules.judge(
                check.image,
                repository,
                state,
                state_error,
                snapshot,
                now,
                protected=protected,
                parent_stays=lambda parent: parent in present and parent not in deleted,
            )
            if (
                verdict.outcome == rules.UNUSED
                and repository.approval_required
                and not check.approved_by
            ):
                verdict = rules.Verdict(
                    "needs_approval", "the repository requires approval and nobody approved"
                )
            if verdict.outcome != rules.UNUSED:
                _refuse_deletion(check, verdict, snapshot, stored, now, result)
                continue
            ready.append((check, verdict))
        if settings.CLEANUP_DRY_RUN:
            for check, verdict in ready:
                _record_would_delete(check, verdict, snapshot, stored, now, result)
                deleted.add(check.image.digest)
            continue
        for chunk in _chunks(ready, aws.MAX_DELETE_BATCH):
            digests = [check.image.digest for check, _ in chunk]
            result.calls += 1
            try:
                outcome = aws.batch_delete_images(
                    repository.account, repository.region, repository.name, digests
                )
            except aws.CleanupAwsError as exc:
                outcome = aws.DeleteOutcome(
                    deleted=[], failures=[(digest, exc.code, str(exc)) for digest in digests]
                )
            failures = {digest: (code, reason) for digest, code, reason in outcome.failures}
            with transaction.atomic():
                for check, verdict in chunk:
                    digest = check.image.digest
                    if digest in failures:
                        _record_delete_failure(
                            check, *failures[digest], snapshot, stored, now, result
                        )
                    else:
                        _record_deleted(check, verdict, snapshot, stored, now, result)
                        deleted.add(digest)


def _actor_of_deletion(check: DeletionCheck) -> str:
    return check.approved_by or WORKER


def _record_image_event(check: DeletionCheck, action: str, now: datetime) -> None:
    """``image.deleted`` / ``image.would_delete``: the digest, its tags and the bytes, by the
    person who approved (or the worker where no approval was required)."""
    image = check.image
    audit.record(
        _actor_of_deletion(check),
        action,
        target_type="ecr_image",
        target_id=image.digest,
        target_label=image.label,
        account_id=image.repository.account.account_id,
        details={
            "digest": image.digest,
            "tags": image.tags,
            "bytes": image.size_bytes,
            "repository": image.repository.name,
            "region": image.repository.region,
            "check": check.pk,
        },
        at=now,
    )


def _refuse_deletion(
    check, verdict: rules.Verdict, snapshot, stored, now, result: DeleteResult
) -> None:
    actor = WORKER
    with transaction.atomic():
        check.evidence = _evidence(verdict, snapshot, stored)
        check.snapshot = stored
        check.claim = ""
        check.updated_at = now
        fields = ["evidence", "snapshot", "claim", "updated_at", "status", "timeline"]
        if verdict.outcome == rules.UNKNOWN:
            check.status = Status.FAILED
            check.attempts += 1
            check.last_error = verdict.reason
            check.due_at = now + backoff(check.attempts)
            fields += ["attempts", "last_error", "due_at"]
            result.failed.append(check.pk)
        elif verdict.outcome == rules.TOO_RECENT:
            check.status = Status.SCHEDULED
            check.due_at = verdict.retry_at
            fields += ["due_at"]
            result.kept.append(check.pk)
        elif verdict.outcome == "needs_approval":
            check.status = Status.AWAITING_APPROVAL
            result.kept.append(check.pk)
        else:
            check.status = Status.IN_USE if verdict.outcome in rules.USED else Status.CANCELLED
            check.decided_by, check.decided_at, check.decision_reason = actor, now, verdict.reason
            fields += ["decided_by", "decided_at", "decision_reason"]
            result.kept.append(check.pk)
            if verdict.outcome == rules.IN_USE:
                check.image.last_used_at = now
                check.image.usage = [ref.as_dict() for ref in verdict.references[:20]]
                check.image.save(update_fields=["last_used_at", "usage"])
        check.note(now, check.status, f"not deleted: {verdict.reason}", actor)
        check.save(update_fields=fields)
        audit.record(
            actor,
            "image.deletion_refused",
            details={
                "outcome": verdict.outcome,
                "reason": verdict.reason,
                "digest": check.image.digest,
            },
            at=now,
            **_check_target(check),
        )


def _record_would_delete(check, verdict, snapshot, stored, now, result: DeleteResult) -> None:
    image = check.image
    with transaction.atomic():
        check.evidence = _evidence(verdict, snapshot, stored)
        check.snapshot = stored
        check.would_delete = True
        _close(
            check,
            Status.CANCELLED,
            now,
            WORKER,
            f"dry run (CLEANUP_DRY_RUN): would delete {image.size_bytes} bytes",
        )
        check.save(update_fields=["evidence", "snapshot", "would_delete"])
        _record_image_event(check, "image.would_delete", now)
    result.would_delete.append(check.pk)


def _record_deleted(check, verdict, snapshot, stored, now, result: DeleteResult) -> None:
    image = check.image
    image.deleted_at, image.deleted_by_console = now, True
    image.save(update_fields=["deleted_at", "deleted_by_console"])
    Repository.objects.filter(pk=image.repository_id).update(
        bytes_reclaimed=F("bytes_reclaimed") + image.size_bytes
    )
    check.evidence = _evidence(verdict, snapshot, stored)
    check.snapshot = stored
    check.status = Status.DELETED
    check.bytes_reclaimed = image.size_bytes
    check.claim = ""
    check.updated_at = now
    check.note(
        now,
        Status.DELETED,
        f"deleted {image.size_bytes} bytes by digest",
        _actor_of_deletion(check),
    )
    check.save(
        update_fields=[
            "evidence",
            "snapshot",
            "status",
            "bytes_reclaimed",
            "claim",
            "updated_at",
            "timeline",
        ]
    )
    _record_image_event(check, "image.deleted", now)
    result.deleted.append(check.pk)
    result.bytes_reclaimed += image.size_bytes


def _record_delete_failure(
    check, code, reason, snapshot, stored, now, result: DeleteResult
) -> None:
    if code == "ImageNotFound":
        check.image.deleted_at = now
        check.image.save(update_fields=["deleted_at"])
        _close(check, Status.CANCELLED, now, WORKER, "the image was already gone from ECR")
        result.kept.append(check.pk)
        return
    check.status = Status.FAILED
    check.attempts += 1
    check.last_error = f"BatchDeleteImage: {code} {reason}".strip()
    check.due_at = now + backoff(check.attempts)
    check.claim = ""
    check.updated_at = now
    check.note(now, Status.FAILED, check.last_error, WORKER)
    check.save(
        update_fields=[
            "status",
            "attempts",
            "last_error",
            "due_at",
            "claim",
            "updated_at",
            "timeline",
        ]
    )
    audit.record(
        WORKER,
        "image.delete_failed",
        details={"code": code, "reason": reason, "digest": check.image.digest},
        at=now,
        **_check_target(check),
    )
    result.failed.append(check.pk)


# Sweep -------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    scheduled: list[Image] = field(default_factory=list)
    in_use: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


def do_sweep(
    *, actor: str = WORKER, now: datetime | None = None, dry_run: bool = False
) -> SweepResult:
    """Schedule a check for every image of an opted-in repository that no source uses and that
    has no open check (images that never get an event). Schedules nothing when a source failed."""
    now = now or clock.now()
    snapshot = usage.take_snapshot(now)
    result = SweepResult(errors=snapshot.errors)
    if not snapshot.complete:
        return result
    open_images = set(
        DeletionCheck.objects.filter(status__in=DeletionCheck.OPEN).values_list(
            "image_id", flat=True
        )
    )
    used: dict[int, list[dict]] = {}
    create: list[DeletionCheck] = []
    for repository in Repository.objects.filter(
        opted_in=True, deleted_at__isnull=True
    ).select_related("account"):
        images = list(Image.objects.present().filter(repository=repository))
        infos = [
            aws.ImageInfo(
                i.digest,
                i.tags,
                i.pushed_at,
                i.size_bytes,
                i.media_type,
                i.child_digests,
                i.last_pulled_at,
            )
            for i in images
        ]
        state = usage.RepositoryState.build(True, infos)
        protected = {image.digest for image in images if image.protected}
        for image in images:
            if image.pk in open_images:
                continue
            if rules.kept_by_rule(image.digest, repository, state, protected):
                continue
            if rules.recently_pulled(image.last_pulled_at, now):
                continue
            if any(
                rules.kept_by_rule(parent, repository, state, protected)
                for parent in state.parents.get(image.digest, ())
            ):
                continue
            references = usage.references_to_image(snapshot, repository.key, state, image.digest)
            for parent in state.parents.get(image.digest, ()):
                references += usage.references_to_image(snapshot, repository.key, state, parent)
            if references:
                used[image.pk] = [ref.as_dict() for ref in references[:20]]
                continue
            result.scheduled.append(image)
            result.bytes += image.size_bytes
            due = now + repository.effective_grace
            check = DeletionCheck(
                image=image,
                trigger=DeletionCheck.Trigger.SWEEP,
                trigger_ref=f"sweep {now:%Y-%m-%d %H:%M}",
                due_at=due,
                created_at=now,
                updated_at=now,
            )
            check.note(
                now, Status.SCHEDULED, f"no source uses it; due {due:%Y-%m-%d %H:%M:%S}", actor
            )
            create.append(check)
    result.in_use = len(used)
    if dry_run:
        return result
    with transaction.atomic():
        _mark_used(used, now)
    # In chunks, so the one SQLite writer is free between them; a conflict (a check opened by an
    # event meanwhile) is skipped by the one-open-check constraint.
    for chunk in _chunks(create, 2000):
        with transaction.atomic():
            DeletionCheck.objects.bulk_create(chunk, batch_size=500, ignore_conflicts=True)
    with transaction.atomic():
        audit.record(
            actor,
            "cleanup.swept",
            target_type="cleanup",
            details={"scheduled": len(create), "bytes": result.bytes, "in_use": len(used)},
            at=now,
        )
    return result
