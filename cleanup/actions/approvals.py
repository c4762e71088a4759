"""Operators' decisions on checks awaiting approval: approve (the deletion is queued and checks
everything again), or reject with a reason (the image is kept)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

import audit
from cleanup.actions.common import Status, check_target, finish_check
from cleanup.actions.decide import load_checks
from cleanup.models import DeletionCheck
from console import clock


def enqueue_deletion(check_ids: list[int]) -> None:
    from django_q.tasks import async_task

    async_task(
        "cleanup.tasks.delete_approved", check_ids, task_name="cleanup: delete approved images"
    )


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
        approved = load_checks(rows)
        for check in approved:
            check.save(update_fields=check.approve(now=now, actor=actor))
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
