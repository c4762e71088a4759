"""What a deletion run records for each check: the image deleted (also when the answer of the
call was lost), kept with the reason it was refused, a dry run's "would delete", or a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F

import audit
from cleanup import rules, usage
from cleanup.actions.common import WORKER, Status, check_target, finish_check, image_target
from cleanup.actions.decide import evidence
from cleanup.models import DeletionCheck, Repository, UsageSnapshot
from cleanup.rules import Outcome

ANSWER_LOST = (
    "deleted by the console: the answer of BatchDeleteImage was lost, confirmed by its absence"
)


@dataclass
class DeleteResult:
    deleted: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    would_delete: list[int] = field(default_factory=list)
    archived: list[int] = field(default_factory=list)  # repositories that archive (actions.archive)
    calls: int = 0
    bytes_reclaimed: int = 0


@dataclass
class Evidence:
    """One usage snapshot and where it is stored, shared by every check of a deletion run."""

    snapshot: usage.Snapshot
    stored: UsageSnapshot

    def attach(self, check: DeletionCheck, verdict: rules.Verdict) -> list[str]:
        check.evidence = evidence(verdict, self.snapshot, self.stored)
        check.snapshot = self.stored
        return ["evidence", "snapshot"]


def _actor_of_deletion(check: DeletionCheck) -> str:
    return check.approved_by or WORKER


def _record_image_event(check: DeletionCheck, action: str, now: datetime, *, how: str = "") -> None:
    """``image.deleted`` / ``image.would_delete``: the digest, its tags and the bytes, by the
    person who approved (or the worker where no approval was required)."""
    image = check.image
    audit.record(
        _actor_of_deletion(check),
        action,
        details={
            "digest": image.digest,
            "tags": image.tags,
            "bytes": image.size_bytes,
            "repository": image.repository.name,
            "region": image.repository.region,
            "check": check.pk,
            **({"how": how} if how else {}),
        },
        at=now,
        **image_target(image),
    )


def refuse_deletion(
    check: DeletionCheck, verdict: rules.Verdict, run: Evidence, now: datetime, result: DeleteResult
) -> None:
    with transaction.atomic():
        fields = run.attach(check, verdict)
        if verdict.outcome == Outcome.UNKNOWN:  # could not make sure: keep, and ask again later
            fields += check.retry_deletion(now=now, error=verdict.reason, actor=WORKER)
        else:
            fields += check.apply_verdict(
                verdict, now=now, actor=WORKER, text=f"not deleted: {verdict.reason}"
            )
        check.save(update_fields=fields)
        failed = verdict.outcome == Outcome.UNKNOWN
        (result.failed if failed else result.kept).append(check.pk)
        if verdict.outcome == Outcome.IN_USE:
            check.image.last_used_at = now
            check.image.usage = [ref.as_dict() for ref in verdict.references[:20]]
            check.image.save(update_fields=["last_used_at", "usage"])
        audit.record(
            WORKER,
            "image.deletion_refused",
            details={
                "outcome": verdict.outcome,
                "reason": verdict.reason,
                "digest": check.image.digest,
            },
            at=now,
            **check_target(check),
        )


def record_would_delete(
    check: DeletionCheck, verdict: rules.Verdict, run: Evidence, now: datetime, result: DeleteResult
) -> None:
    with transaction.atomic():
        check.would_delete = True
        check.save(update_fields=[*run.attach(check, verdict), "would_delete"])
        finish_check(
            check,
            Status.CANCELLED,
            now=now,
            actor=WORKER,
            reason=f"dry run (CLEANUP_DRY_RUN): would delete {check.image.size_bytes} bytes",
        )
        _record_image_event(check, "image.would_delete", now)
    result.would_delete.append(check.pk)


def record_deleted(
    check: DeletionCheck,
    verdict: rules.Verdict,
    run: Evidence,
    now: datetime,
    result: DeleteResult,
    *,
    how: str = "deleted by digest",
) -> None:
    image = check.image
    image.deleted_at, image.deleted_by_console = now, True
    image.save(update_fields=["deleted_at", "deleted_by_console"])
    Repository.objects.filter(pk=image.repository_id).update(
        bytes_reclaimed=F("bytes_reclaimed") + image.size_bytes
    )
    check.status = Status.DELETED
    check.bytes_reclaimed = image.size_bytes
    check.claim = ""
    check.updated_at = now
    check.add_to_timeline(
        now,
        Status.DELETED,
        f"deleted {image.size_bytes} bytes by digest",
        _actor_of_deletion(check),
    )
    check.save(
        update_fields=[
            *run.attach(check, verdict),
            "status",
            "bytes_reclaimed",
            "claim",
            "updated_at",
            "timeline",
        ]
    )
    _record_image_event(check, "image.deleted", now, how=how)
    result.deleted.append(check.pk)
    result.bytes_reclaimed += image.size_bytes


def record_delete_failure(
    check: DeletionCheck, code: str, reason: str, now: datetime, result: DeleteResult
) -> None:
    if code == "ImageNotFound":
        check.image.deleted_at = now
        check.image.save(update_fields=["deleted_at"])
        finish_check(
            check,
            Status.CANCELLED,
            now=now,
            actor=WORKER,
            reason="the image was already gone from ECR",
        )
        result.kept.append(check.pk)
        return
    error = f"BatchDeleteImage: {code} {reason}".strip()
    check.save(update_fields=check.mark_failed(now=now, error=error, actor=WORKER))
    audit.record(
        WORKER,
        "image.delete_failed",
        details={"code": code, "reason": reason, "digest": check.image.digest},
        at=now,
        **check_target(check),
    )
    result.failed.append(check.pk)
