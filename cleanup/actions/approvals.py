"""Operators' decisions on checks awaiting approval: approve (the deletion is queued and checks
everything again), or reject with a reason (the image is kept); and approving every check that
matches the queue's filters, done by the worker in chunks with its progress on a row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction

import audit
from cleanup.actions.common import Status, check_target, chunks, finish_check
from cleanup.actions.decide import load_checks
from cleanup.models import BulkApproval, DeletionCheck
from console import clock

BULK_CHUNK = 200
BULK_LIMIT = 100_000  # ids kept on the job row: what the operator confirmed, and no more


def enqueue_deletion(check_ids: list[int]) -> None:
    from django_q.tasks import async_task

    async_task(
        "cleanup.tasks.delete_approved", check_ids, task_name="cleanup: delete approved images"
    )


def do_approve_checks(
    check_ids: list[int], *, actor: str, now: datetime | None = None
) -> list[DeletionCheck]:
    """Approve checks awaiting approval; the deletion is enqueued when the transaction commits
    and takes its own fresh usage snapshot. The rows are written in one statement; each gets its
    audit event."""
    now = now or clock.now()
    if not check_ids:
        return []
    with transaction.atomic():
        rows = DeletionCheck.objects.filter(pk__in=check_ids, status=Status.AWAITING_APPROVAL)
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(of=("self",))
        approved = load_checks(rows)
        fields: set[str] = set()
        for check in approved:
            fields.update(check.approve(now=now, actor=actor))
        DeletionCheck.objects.bulk_update(approved, sorted(fields), batch_size=500)
        for check in approved:
            audit.record(
                actor,
                "check.approved",
                details={
                    "digest": check.image.digest,
                    "tags": check.image.tags,
                    "bytes": check.image.size_bytes,
                },
                at=now,
                **check_target(check),
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
        rows = load_checks(
            DeletionCheck.objects.filter(pk__in=check_ids, status__in=DeletionCheck.CANCELLABLE)
        )
        for check in rows:
            finish_check(check, Status.REJECTED, now=now, actor=actor, reason=reason.strip())
    return rows


def do_start_bulk_approval(
    check_ids: list[int],
    *,
    actor: str,
    filters: dict[str, Any],
    total_bytes: int,
    now: datetime | None = None,
) -> BulkApproval:
    """Approve, in the worker, the checks an operator confirmed from the queue's "all matching"
    (their ids, taken when the count was confirmed: a check that arrives later is not approved
    by a confirmation that did not count it)."""
    if not check_ids:
        raise ValueError("nothing to approve")
    if len(check_ids) > BULK_LIMIT:
        raise ValueError(f"at most {BULK_LIMIT:,} checks at once")
    now = now or clock.now()
    with transaction.atomic():
        job = BulkApproval.objects.create(
            actor=actor,
            created_at=now,
            filters={**filters, "ids": sorted(check_ids)},
            total=len(check_ids),
            total_bytes=total_bytes,
        )
        audit.record(
            actor,
            "checks.bulk_approval_started",
            target_type="bulk_approval",
            target_id=job.pk,
            target_label=f"{len(check_ids):,} checks matching the queue's filters",
            details={"filters": filters, "checks": len(check_ids), "bytes": total_bytes},
            at=now,
        )
        transaction.on_commit(lambda: enqueue_bulk_approval(job.pk))
    return job


def enqueue_bulk_approval(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "cleanup.actions.approvals.run_bulk_approval",
        job_id,
        task_name=f"cleanup: bulk approval {job_id}",
    )


def run_bulk_approval(job_id: int, *, now: datetime | None = None) -> BulkApproval | None:
    """The worker's side: claim the job (one worker only), approve chunk by chunk, and write
    the progress after each chunk for the page to show."""
    claimed = BulkApproval.objects.filter(pk=job_id, status=BulkApproval.Status.QUEUED).update(
        status=BulkApproval.Status.RUNNING
    )
    if not claimed:
        return None
    job = BulkApproval.objects.get(pk=job_id)
    ids: list[int] = list(job.filters.get("ids", []))
    try:
        for chunk in chunks(ids, BULK_CHUNK):
            approved = do_approve_checks(list(chunk), actor=job.actor, now=now)
            job.done += len(chunk)
            job.approved += len(approved)
            job.save(update_fields=["done", "approved"])
    except Exception as exc:  # recorded on the job; what was approved stays approved
        job.status, job.error = BulkApproval.Status.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        job.status = BulkApproval.Status.FINISHED
    job.finished_at = now or clock.now()
    job.save(update_fields=["status", "error", "finished_at"])
    return job
