"""Probes of a half-open breaker: one worker at a time per breaker (a lease on the row), one
trial message through the function, and what its answer means for the breaker."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django_q.tasks import async_task

import audit
from breaker import aws, probing
from breaker.actions.machine import (
    WORKER,
    Cause,
    Mode,
    State,
    close,
    half_open,
    locked,
    target,
    transition,
)
from breaker.aws import BreakerAwsError
from breaker.models import Breaker, Probe
from console import clock

# A probe task may run as long as the probe's lease (the function's timeout, up to 15 minutes,
# plus a margin); Q_CLUSTER["retry"] stays above that, so no probe task is handed to a second
# worker while it runs (and one that were would find the lease held).
PROBE_TASK_TIMEOUT_FLOOR = 120


def enqueue_probe(breaker_id: int, actor: str = WORKER) -> None:
    lease = Breaker.objects.get(pk=breaker_id).probe_lease.total_seconds()
    timeout = max(PROBE_TASK_TIMEOUT_FLOOR, int(lease))
    async_task("breaker.tasks.probe", breaker_id, actor, timeout=timeout, group="breaker")


def _lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:120]


def claim_probe(breaker: Breaker, now: datetime, owner: str) -> bool:
    """Take the probe lease with one conditional update: of two workers only one sees 1."""
    claimed = (
        Breaker.objects.may_probe(now)
        .filter(pk=breaker.pk)
        .update(probe_lease_until=now + breaker.probe_lease, probe_lease_owner=owner)
    )
    return claimed == 1


def do_probe(breaker_id: int, *, now: datetime | None = None, actor: str = WORKER) -> Probe | None:
    """Run one probe if the breaker is due and nobody else is probing it; ``None`` otherwise.

    Receive one message (hidden longer than the function may run), invoke the function with the
    record Lambda would have built, judge the answer. Passed: delete the message and count.
    Failed: leave the message to the queue (its redrive policy still applies) and open again
    with the next back-off. Nothing here closes a breaker because the probe itself broke.
    """
    now = now or clock.now()
    owner = _lease_owner()
    breaker = Breaker.objects.select_related("account").get(pk=breaker_id)
    if not claim_probe(breaker, now, owner):
        return None
    breaker.refresh_from_db()
    started = time.monotonic()
    outcome, detail, message_id = _run_probe(breaker)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record_probe(
        breaker_id,
        now=now,
        actor=actor,
        owner=owner,
        outcome=outcome,
        detail=detail,
        message_id=message_id,
        duration_ms=duration_ms,
    )


def _run_probe(breaker: Breaker) -> tuple[str, str, str]:
    account, region = breaker.account, breaker.region
    try:
        message = aws.receive_one(
            account, region, breaker.queue_url, breaker.probe_visibility_timeout
        )
    except BreakerAwsError as exc:
        return Probe.Outcome.ERROR, f"could not receive from the queue: {exc}", ""
    if message is None:
        return Probe.Outcome.NO_MESSAGE, "the queue had no visible message", ""
    event = probing.sqs_event(message, queue_arn=breaker.queue_arn, region=region)
    payload = _json_bytes(event)
    try:
        invocation = aws.invoke(
            account, region, breaker.function_name, payload, read_timeout=breaker.probe_read_timeout
        )
    except BreakerAwsError as exc:
        # A timeout or a dropped connection: the function did not answer in time, a failure.
        return Probe.Outcome.FAILED, f"invoke failed: {exc}", message.message_id
    verdict = probing.judge(
        invocation,
        message.message_id,
        reports_batch_item_failures=breaker.reports_batch_item_failures,
    )
    if not verdict.passed:
        return Probe.Outcome.FAILED, verdict.detail, message.message_id
    try:
        aws.delete_message(account, region, breaker.queue_url, message.receipt_handle)
    except BreakerAwsError as exc:
        return (
            Probe.Outcome.ERROR,
            f"the function succeeded but the message was not deleted: {exc}",
            message.message_id,
        )
    return Probe.Outcome.PASSED, "", message.message_id


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _record_probe(
    breaker_id: int,
    *,
    now: datetime,
    actor: str,
    owner: str,
    outcome: str,
    detail: str,
    message_id: str,
    duration_ms: int,
) -> Probe:
    from breaker.actions.mapping import converge_mapping

    converge = False
    with transaction.atomic():
        row = locked(breaker_id)
        probe = Probe.objects.create(
            breaker=row,
            at=now,
            message_id=message_id,
            outcome=outcome,
            duration_ms=duration_ms,
            detail=detail,
            actor=actor,
        )
        audit.record(
            actor,
            "breaker.probe",
            details={
                "outcome": outcome,
                "message_id": message_id,
                "duration_ms": duration_ms,
                "detail": detail,
            },
            at=now,
            **target(row),
        )
        fields = ["probe_lease_until", "probe_lease_owner"]
        if row.probe_lease_owner == owner:
            row.probe_lease_until = None
            row.probe_lease_owner = ""
        # The alarm, an operator or the reconcile may have moved the breaker meanwhile: then the
        # probe is history only.
        if row.mode == Mode.AUTO and row.state == State.HALF_OPEN:
            fields += ["state", "half_open_successes", "consecutive_failures", "next_probe_at"]
            interval = timedelta(seconds=row.probe_interval_seconds)
            if outcome == Probe.Outcome.PASSED:
                row.half_open_successes += 1
                if row.half_open_successes >= row.successes_to_close:
                    passed = row.half_open_successes
                    reason = f"{passed} probe{'s' if passed != 1 else ''} passed"
                    fields += close(row, cause=Cause.PROBE, actor=actor, reason=reason, now=now)
                    converge = True
                else:
                    row.next_probe_at = now + interval
            elif outcome == Probe.Outcome.FAILED:
                backoff = row.next_backoff()
                row.consecutive_failures += 1
                row.half_open_successes = 0
                row.next_probe_at = now + backoff
                transition(
                    row,
                    State.OPEN,
                    cause=Cause.PROBE,
                    actor=actor,
                    reason=detail,
                    now=now,
                    action="breaker.opened",
                    backoff_seconds=int(backoff.total_seconds()),
                )
                converge = True
            elif outcome == Probe.Outcome.NO_MESSAGE and row.close_when_queue_empty:
                fields += close(
                    row, cause=Cause.PROBE, actor=actor, reason="the queue was empty", now=now
                )
                converge = True
            else:
                row.next_probe_at = now + interval
        row.save(update_fields=fields)
    if converge:
        converge_mapping(breaker_id, now)
    return probe


def do_probe_now(
    breaker: Breaker, *, actor: str, now: datetime | None = None, in_worker: bool = False
) -> Probe | None:
    """An operator asks for a probe now: an open automatic breaker goes half-open for it.
    ``in_worker``: the probe is handed to the worker after the commit (returns None)."""
    now = now or clock.now()
    with transaction.atomic():
        row = locked(breaker.pk)
        if row.mode != Mode.AUTO or row.state not in (State.OPEN, State.HALF_OPEN) or row.broken:
            raise ValidationError(
                "Only an open or half-open breaker under automatic control can be probed."
            )
        if row.in_alarm:
            raise ValidationError("An alarm is in ALARM: the breaker stays open until it clears.")
        fields = ["next_probe_at"]
        if row.state == State.OPEN:
            fields += half_open(
                row, cause=Cause.MANUAL, actor=actor, reason="probe requested", now=now
            )
        row.next_probe_at = now
        row.save(update_fields=fields)
        if in_worker:
            transaction.on_commit(partial(enqueue_probe, breaker.pk, actor))
    if in_worker:
        breaker.refresh_from_db()
        return None
    probe = do_probe(breaker.pk, now=now, actor=actor)
    breaker.refresh_from_db()
    return probe
