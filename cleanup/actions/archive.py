"""Reversible cleanup: archiving approved images instead of deleting them, deleting them after N
days in the archive (archive-then-delete), and restoring them, by hand or by the console itself
when a usage source references an archived image again.

- ``split_ready`` / ``archive_ready``: the execution branch of a deletion run
  (``cleanup.actions.delete``) for repositories whose action archives. One
  ``UpdateImageStorageClass`` call per image, by digest (ECR has no batch form).
- ``do_restore_image``: an operator's restore (page or CLI). Records the request, audits it and
  makes at most one AWS call; ECR answers ``ACTIVATING`` and the image can be pulled again some
  minutes later (up to 20 says AWS). ``do_advance_restore`` looks again, one call each time.
- ``do_archive_pass``: the recurring pass (``cleanup.archive``): unfinished restores advanced,
  archived images referenced again restored (when the repository says so), archived images of
  archive-then-delete repositories that stayed long enough get a deletion check.
- ``needs_attention``: recent automatic restores, for the dashboard's "needs attention" list.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

import audit
from cleanup import aws, rules, usage
from cleanup.actions.common import WORKER, Status, check_target, image_info, image_target
from cleanup.actions.outcomes import DeleteResult, Evidence
from cleanup.models import (
    DeletionCheck,
    Image,
    ImageRestore,
    Repository,
    StorageStatus,
)
from cleanup.savings import archive_saving_per_month
from console import clock

logger = logging.getLogger(__name__)
ATTENTION_WINDOW = timedelta(days=7)
ADVANCE_LIMIT = 200  # restores looked at per pass (one DescribeImages each)
# An operator's page polls a restore; it asks ECR again at most this often.
POLL_AWS_EVERY = timedelta(seconds=10)

Ready = Sequence[tuple[DeletionCheck, rules.Verdict]]


class RestoreRefused(Exception):
    """The image cannot be restored now (not archived, gone, or a restore is under way)."""


# --- Executing approved checks ---------------------------------------------------------------


def split_ready(
    repository: Repository, ready: Ready, state: usage.RepositoryState | None, now: datetime
) -> tuple[list[tuple[DeletionCheck, rules.Verdict]], list[tuple[DeletionCheck, rules.Verdict]]]:
    """(to archive, to delete). A repository that deletes deletes everything. One that archives
    archives, except, for archive-then-delete, images ECR reports archived for long enough."""
    if not repository.archives:
        return [], list(ready)
    to_archive, to_delete = [], []
    for check, verdict in ready:
        info = state.images.get(check.image.digest) if state else None
        archived_at = (info.archived_at if info else None) or check.image.archived_at
        due = repository.archive_delete_due(archived_at)
        if info is not None and info.status == StorageStatus.ARCHIVED and due and due <= now:
            to_delete.append((check, verdict))
        else:
            to_archive.append((check, verdict))
    return to_archive, to_delete


def archive_ready(
    repository: Repository,
    ready: Ready,
    state: usage.RepositoryState | None,
    run: Evidence,
    now: datetime,
    result: DeleteResult,
) -> set[str]:
    """Archive the images of approved checks, one call each; returns the digests archived.
    An image ECR already reports archived is recorded without a call."""
    archived: set[str] = set()
    for check, verdict in ready:
        digest = check.image.digest
        info = state.images.get(digest) if state else None
        if info is not None and info.status == StorageStatus.ARCHIVED:
            _record_archived(check, verdict, run, now, result, how="already archived in ECR")
            archived.add(digest)
            continue
        try:
            status = aws.update_image_storage_class(
                repository.account, repository.region, repository.name, digest, aws.ARCHIVE
            )
        except aws.CleanupAwsError as exc:
            _record_archive_failure(check, exc, now, result)
            continue
        _record_archived(check, verdict, run, now, result, how=f"ECR answered {status or '?'}")
        archived.add(digest)
    return archived


def _record_archived(
    check: DeletionCheck,
    verdict: rules.Verdict,
    run: Evidence,
    now: datetime,
    result: DeleteResult,
    *,
    how: str,
) -> None:
    image = check.image
    repository = image.repository
    with transaction.atomic():
        image.storage_status = StorageStatus.ARCHIVED
        image.archived_at = image.archived_at if how.startswith("already") else now
        image.archived_by_console = True
        image.save(update_fields=["storage_status", "archived_at", "archived_by_console"])
        actor = check.approved_by or WORKER
        due = repository.archive_delete_due(image.archived_at)
        text = f"archived {image.size_bytes} bytes by digest ({how})"
        if due:
            text += f"; deleted from {due:%Y-%m-%d} unless used again"
        check.status = Status.ARCHIVED
        check.claim = ""
        check.updated_at = now
        check.add_to_timeline(now, Status.ARCHIVED, text, actor)
        check.save(
            update_fields=[*run.attach(check, verdict), "status", "claim", "updated_at", "timeline"]
        )
        audit.record(
            actor,
            "image.archived",
            details={
                "digest": image.digest,
                "tags": image.tags,
                "bytes": image.size_bytes,
                "repository": repository.name,
                "region": repository.region,
                "check": check.pk,
                "how": how,
                "saved_per_month_usd": archive_saving_per_month(image.size_bytes),
                "delete_after": due.isoformat() if due else None,
            },
            at=now,
            **image_target(image),
        )
    result.archived.append(check.pk)


def _record_archive_failure(
    check: DeletionCheck, exc: aws.CleanupAwsError, now: datetime, result: DeleteResult
) -> None:
    """Nothing is archived on doubt. The image gone from ECR closes the check; an answer that
    never came keeps the approval (the next pass judges again); a refusal fails the check."""
    with transaction.atomic():
        if exc.code == "ImageNotFoundException":
            check.image.deleted_at = now
            check.image.save(update_fields=["deleted_at"])
            check.save(
                update_fields=check.finish(
                    Status.CANCELLED,
                    now=now,
                    actor=WORKER,
                    reason="the image was already gone from ECR",
                )
            )
            result.kept.append(check.pk)
        elif exc.retryable:
            error = f"UpdateImageStorageClass: {exc}"
            check.save(update_fields=check.retry_deletion(now=now, error=error, actor=WORKER))
            result.failed.append(check.pk)
        else:
            error = f"UpdateImageStorageClass: {exc.code} {exc}".strip()
            check.save(update_fields=check.mark_failed(now=now, error=error, actor=WORKER))
            result.failed.append(check.pk)
        audit.record(
            WORKER,
            "image.archive_failed",
            details={"code": exc.code, "reason": str(exc), "digest": check.image.digest},
            at=now,
            **check_target(check),
        )


# --- Restoring --------------------------------------------------------------------------------


def find_image(ref: str) -> Image:
    """An image by console id, or by digest (``sha256:...`` or its first 12+ hex characters).
    Raises ``Image.DoesNotExist`` (none) or ``Image.MultipleObjectsReturned`` (ambiguous)."""
    images = Image.objects.present().select_related("repository__account")
    if ref.isdigit():
        return images.get(pk=int(ref))
    digest = ref if ref.startswith("sha256:") else f"sha256:{ref}"
    if len(digest) == len("sha256:") + 64:
        return images.get(digest=digest)
    if len(digest) < len("sha256:") + 12:
        raise Image.DoesNotExist(f"{ref}: give the image id or at least 12 hex digits")
    return images.get(digest__startswith=digest)


def do_request_restore(
    image: Image,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
    references: list[dict[str, Any]] | None = None,
) -> ImageRestore:
    """Record a restore of an archived image and audit it (no AWS call). ``references``: the
    usage references that made the console ask by itself (an automatic restore)."""
    now = now or clock.now()
    automatic = references is not None
    if image.deleted_at is not None:
        raise RestoreRefused(f"{image.label} is deleted")
    if image.is_restoring or image.restores.unfinished().exists():
        raise RestoreRefused(f"a restore of {image.label} is already under way")
    if not image.is_archived:
        raise RestoreRefused(f"{image.label} is not archived (ECR: {image.storage_status})")
    try:
        with transaction.atomic():
            restore = ImageRestore.objects.create(
                image=image,
                requested_at=now,
                requested_by=actor,
                reason=reason,
                automatic=automatic,
                references=references or [],
            )
            audit.record(
                actor,
                "image.restore_requested",
                details={
                    "digest": image.digest,
                    "tags": image.tags,
                    "repository": image.repository.name,
                    "restore": restore.pk,
                    "reason": reason,
                    "automatic": automatic,
                    "references": (references or [])[:20],
                },
                at=now,
                **image_target(image),
            )
            _note_on_timeline(image, now, actor, f"restore requested: {reason}")
    except IntegrityError:
        raise RestoreRefused(f"a restore of {image.label} is already under way") from None
    return restore


def _note_on_timeline(image: Image, now: datetime, actor: str, text: str) -> None:
    """On the timeline of the check that archived the image (the last one), if any."""
    check = image.checks.filter(status=Status.ARCHIVED).order_by("-updated_at", "-id").first()
    if check is not None:
        check.add_to_timeline(now, Status.ARCHIVED, text, actor)
        check.save(update_fields=["timeline"])


def do_advance_restore(restore: ImageRestore, *, now: datetime | None = None) -> ImageRestore:
    """One AWS call at most: ask ECR to restore (a new request), or how the restore is going
    (ACTIVATING). Claimed by a conditional update, so two callers never both call AWS."""
    now = now or clock.now()
    if restore.is_final:
        return restore
    claimed = (
        ImageRestore.objects.filter(
            pk=restore.pk, status=restore.status, attempts=restore.attempts
        ).update(attempts=restore.attempts + 1, last_checked_at=now)
        == 1
    )
    restore.refresh_from_db()
    if not claimed:
        return restore
    image = Image.objects.select_related("repository__account").get(pk=restore.image_id)
    repository = image.repository
    try:
        if restore.status == ImageRestore.Status.REQUESTED:
            status: str | None = aws.update_image_storage_class(
                repository.account, repository.region, repository.name, image.digest, aws.STANDARD
            )
        else:
            status = aws.image_status(
                repository.account, repository.region, repository.name, image.digest
            )
    except aws.CleanupAwsError as exc:
        if exc.retryable:  # no answer: ask again next time
            restore.error = f"{exc.code}: {exc}"
            restore.save(update_fields=["error"])
            return restore
        _finish_restore(restore, image, ImageRestore.Status.FAILED, now, error=f"{exc.code}: {exc}")
        return restore
    if status is None:
        _finish_restore(restore, image, ImageRestore.Status.FAILED, now, error="gone from ECR")
    elif status == StorageStatus.ACTIVE:
        _finish_restore(restore, image, ImageRestore.Status.RESTORED, now)
    elif status == StorageStatus.ACTIVATING:
        with transaction.atomic():
            restore.status, restore.error = ImageRestore.Status.ACTIVATING, ""
            restore.save(update_fields=["status", "error"])
            image.storage_status = StorageStatus.ACTIVATING
            image.save(update_fields=["storage_status"])
    else:  # ECR still says ARCHIVED after a restore was accepted: look again later
        restore.status = ImageRestore.Status.ACTIVATING
        restore.save(update_fields=["status"])
    return restore


def _finish_restore(
    restore: ImageRestore, image: Image, status: str, now: datetime, *, error: str = ""
) -> None:
    with transaction.atomic():
        restore.save(update_fields=restore.finish(status, now=now, error=error))
        fields = []
        if status == ImageRestore.Status.RESTORED:
            image.storage_status, image.activated_at = StorageStatus.ACTIVE, now
            fields = ["storage_status", "activated_at"]
            if restore.automatic:  # in use again: a sweep must not schedule it at once
                image.last_used_at = now
                image.usage = restore.references[:20]
                fields += ["last_used_at", "usage"]
        elif error == "gone from ECR":
            image.deleted_at = now
            fields = ["deleted_at"]
        elif image.storage_status == StorageStatus.ACTIVATING:
            image.storage_status = StorageStatus.ARCHIVED
            fields = ["storage_status"]
        if fields:
            image.save(update_fields=fields)
        action = (
            "image.restored" if status == ImageRestore.Status.RESTORED else "image.restore_failed"
        )
        audit.record(
            WORKER,
            action,
            details={
                "digest": image.digest,
                "restore": restore.pk,
                "requested_by": restore.requested_by,
                "automatic": restore.automatic,
                **({"error": error} if error else {}),
            },
            at=now,
            **image_target(image),
        )
        text = "restored: ACTIVE in ECR" if not error else f"restore failed: {error}"
        _note_on_timeline(image, now, WORKER, text)


def do_restore_image(
    image: Image, *, actor: str, reason: str, now: datetime | None = None
) -> ImageRestore:
    """An operator's restore: recorded, audited, and asked of ECR in one call."""
    now = now or clock.now()
    restore = do_request_restore(image, actor=actor, reason=reason, now=now)
    return do_advance_restore(restore, now=now)


def do_poll_restore(restore: ImageRestore, *, now: datetime | None = None) -> ImageRestore:
    """What a page polling a restore shows: ECR asked again (one call) when the last look is
    older than ``POLL_AWS_EVERY``, else the row as it is."""
    now = now or clock.now()
    last = restore.last_checked_at
    if restore.is_final or (last is not None and now - last < POLL_AWS_EVERY):
        return restore
    return do_advance_restore(restore, now=now)


# --- The recurring pass -----------------------------------------------------------------------


@dataclass
class ArchivePassResult:
    advanced: int = 0
    restored: int = 0
    auto_restores: list[int] = field(default_factory=list)
    delete_checks: int = 0
    errors: list[str] = field(default_factory=list)


def do_archive_pass(*, now: datetime | None = None) -> ArchivePassResult:
    now = now or clock.now()
    result = ArchivePassResult()
    for restore in ImageRestore.objects.unfinished().order_by("last_checked_at")[:ADVANCE_LIMIT]:
        restore = do_advance_restore(restore, now=now)
        result.advanced += 1
        result.restored += restore.status == ImageRestore.Status.RESTORED
    result.auto_restores = restore_referenced(now=now, errors=result.errors)
    result.delete_checks = schedule_archive_deletions(now=now)
    return result


def _archived_watched() -> QuerySet[Image]:
    """Images the console archived, in repositories that want them back when used again. (Ones
    an ECR lifecycle policy archived are left to it: watching them would take a usage snapshot
    every pass for as long as any exists.)"""
    return Image.objects.present().filter(
        storage_status=StorageStatus.ARCHIVED,
        archived_by_console=True,
        repository__auto_restore=True,
        repository__deleted_at__isnull=True,
    )


def restore_referenced(*, now: datetime, errors: list[str] | None = None) -> list[int]:
    """Archived images a usage source references again are restored by the console itself
    (where the repository allows it). A reference found is evidence enough even when another
    source failed: restoring never loses anything. Returns the restores started."""
    if not _archived_watched().exists():
        return []
    snapshot = usage.take_snapshot(now)
    if errors is not None:
        errors.extend(snapshot.errors)
    by_repository: dict[int, list[Image]] = defaultdict(list)
    for image in _archived_watched().select_related("repository__account"):
        by_repository[image.repository_id].append(image)
    started = []
    for archived in by_repository.values():
        repository = archived[0].repository
        images = list(Image.objects.present().filter(repository=repository))
        state = usage.RepositoryState.build(True, [image_info(image) for image in images])
        for image in archived:
            references = usage.references_to_image(snapshot, repository.key, state, image.digest)
            for parent in sorted(state.parents.get(image.digest, ())):
                references += usage.references_to_image(snapshot, repository.key, state, parent)
            if not references:
                continue
            refs = [ref.as_dict() for ref in references[:20]]
            first = refs[0]
            reason = (
                f"referenced again: {first.get('where', '')} in {first.get('account_id', '')} "
                f"{first.get('region', '')}"
            ).strip()
            try:
                restore = do_request_restore(
                    image, actor=WORKER, reason=reason, now=now, references=refs
                )
            except RestoreRefused:
                continue
            do_advance_restore(restore, now=now)
            started.append(restore.pk)
    return started


def schedule_archive_deletions(*, now: datetime) -> int:
    """Archive-then-delete: a deletion check, due now, for each image the console archived
    that stayed its N days in the archive and has no open check. The check is decided and
    approved like any other; executing it deletes (``split_ready``)."""
    created = 0
    for repository in Repository.objects.filter(
        cleanup_action="archive_then_delete", opted_in=True, deleted_at__isnull=True
    ):
        period = repository.archive_period
        if period is None:
            continue
        oldest = now - period
        images = (
            Image.objects.present()
            .filter(
                repository=repository,
                storage_status=StorageStatus.ARCHIVED,
                archived_by_console=True,
                archived_at__lte=oldest,
            )
            .exclude(checks__status__in=DeletionCheck.OPEN)
        )
        for image in images:
            check = DeletionCheck(
                image=image,
                trigger=DeletionCheck.Trigger.ARCHIVE_EXPIRED,
                trigger_ref=f"archived {image.archived_at:%Y-%m-%d}",
                due_at=now,
                created_at=now,
                updated_at=now,
            )
            check.add_to_timeline(
                now,
                Status.SCHEDULED,
                f"archived since {image.archived_at:%Y-%m-%d}, "
                f"{repository.archive_delete_after_days} days reached: judged again for deletion",
                WORKER,
            )
            try:
                with transaction.atomic():
                    check.save()
            except IntegrityError:  # a check opened meanwhile
                continue
            created += 1
    return created


def needs_attention(*, now: datetime | None = None) -> QuerySet[ImageRestore]:
    """Automatic restores of the last seven days, newest first: someone deployed an image the
    console had archived. For the dashboard's "needs attention" list."""
    now = now or clock.now()
    return (
        ImageRestore.objects.filter(automatic=True, requested_at__gte=now - ATTENTION_WINDOW)
        .select_related("image__repository__account")
        .order_by("-requested_at", "-id")
    )
