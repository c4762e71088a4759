"""Storing inbound events and processing them exactly once."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django_q.tasks import async_task

import audit
from console import clock, logs
from webhooks import registry
from webhooks.classify import Classification
from webhooks.models import MAX_ATTEMPTS, PROCESSING_LEASE, DrainRequest, InboundEvent

logger = logging.getLogger(__name__)
MAIN = settings.Q_CLUSTER["name"]  # the main cluster's queue

# Below Q_CLUSTER["retry"], or a slow event would be handed to a second worker.
TASK_TIMEOUT = 120
PROCESS_BATCH = 500
# A drain claims this many events at a time and stops taking more after DRAIN_SECONDS (asking
# for another drain if some are left), so the queue keeps moving for other tasks.
DRAIN_BATCH = 50
DRAIN_SECONDS = 2.0
# A drain commits what it did at least this often (and after every batch): one commit for many
# events instead of two for each (a commit waits for the disk, about 1-3 ms, far more than the
# work of most events), while SQLite's one writer is never held for long.
COMMIT_SECONDS = 0.2
# A drain asked for this long ago and never started (its task was lost with a worker) is asked
# for again by the next event; the minute sweep processes what is due meanwhile.
DRAIN_REQUEST_STALE = timedelta(seconds=60)
ALARM_LANE_GRACE = timedelta(seconds=60)
# ``do_resume_stalled`` (every few seconds on every worker host) hands on an alarm whose task has
# not started after this long, and asks again for a drain that has not started after this long.
STALLED_AFTER = timedelta(seconds=10)


def enqueue_processing(event_id: int, kind: str = "") -> None:
    """One event's own task. An alarm's goes to the alarm cluster's queue, so no burst of other
    work (a drain, a probe, a sweep) is ever ahead of a breaker decision."""
    cluster = settings.Q_ALARM_CLUSTER if kind == registry.ALARM_STATE_CHANGE else None
    async_task(
        "webhooks.tasks.process_event",
        event_id,
        timeout=TASK_TIMEOUT,
        group="webhooks",
        cluster=cluster,
    )


def enqueue_drain() -> None:
    # The main queue by name: an alarm handler runs in the alarm cluster, whose default queue
    # is its own.
    async_task("webhooks.tasks.drain", timeout=TASK_TIMEOUT, group="webhooks", cluster=MAIN)


def after_receiving(event: InboundEvent) -> None:
    """The fast lane and the drain: an alarm gets a task of its own at once, in the alarm
    cluster's queue; anything else asks for a drain."""
    if event.kind == registry.ALARM_STATE_CHANGE:
        enqueue_processing(event.id, event.kind)
    else:
        request_drain()


def request_drain(now: datetime | None = None, *, force: bool = False) -> bool:
    """Ask for a drain of the inbox unless one is asked for already; True when this call asked
    (and enqueued the drain task). One conditional update: of many callers one sees 1.
    ``force``: enqueue a drain even if one was asked for (the minute pass: that one may have been
    lost with a worker; a second drain finds nothing or shares the work)."""
    now = now or clock.now()
    if force:
        DrainRequest.objects.update_or_create(pk=1, defaults={"requested_at": now})
        enqueue_drain()
        return True
    idle = Q(requested_at__isnull=True) | Q(requested_at__lt=now - DRAIN_REQUEST_STALE)
    asked = DrainRequest.objects.filter(idle, pk=1).update(requested_at=now)
    if not asked:
        _, created = DrainRequest.objects.get_or_create(pk=1, defaults={"requested_at": now})
        if not created:
            return False
    enqueue_drain()
    return True


def do_receive_event(
    *,
    source: str,
    dedupe_key: str,
    raw_body: str,
    classification: Classification,
    message_type: str = "",
    topic_arn: str = "",
    now: datetime | None = None,
    enqueue: bool = True,
) -> InboundEvent | None:
    """Store an authenticated event and have it processed after commit. Returns ``None`` when an
    event with the same dedupe key is already stored: the unique constraint decides, so two
    deliveries racing each other still store one row."""
    now = now or clock.now()
    event = InboundEvent(
        source=source,
        dedupe_key=dedupe_key,
        kind=classification.kind,
        raw_body=raw_body,
        received_at=now,
        message_type=message_type,
        topic_arn=topic_arn,
        account_id=classification.account_id,
        detail_type=classification.detail_type,
        summary=classification.summary,
        request_id=(logs.request_id() or "")[:64],
        history=[{"at": now.isoformat(), "what": "received", "text": ""}],
    )
    try:
        with transaction.atomic():
            event.save(force_insert=True)
            if event.kind == registry.UNSUBSCRIBE_CONFIRMATION:
                audit.record(
                    event.actor,
                    "webhook.unsubscribe_received",
                    target_type="sns_topic",
                    target_id=topic_arn,
                    target_label=topic_arn,
                    account_id=classification.account_id,
                    details={"event_id": event.id, "message_id": dedupe_key},
                    at=now,
                )
            if enqueue:
                transaction.on_commit(lambda: after_receiving(event))
    except IntegrityError:
        if not InboundEvent.objects.filter(dedupe_key=dedupe_key).exists():
            raise
        return None
    return event


def _claim(event_id: int, now: datetime, *, wait_for_retry: bool) -> bool:
    """Take the event for this worker with one conditional update, so two workers (or a worker
    and the CLI) never process the same event."""
    pending = (
        InboundEvent.objects.pending(now) if not wait_for_retry else InboundEvent.objects.due(now)
    )
    # A token of its own: a drain that held the event before its lease ended sees it is no
    # longer its own (``_renew_claim``) and leaves it alone.
    claimed = pending.filter(pk=event_id).update(
        status=InboundEvent.Status.PROCESSING, claimed_at=now, claim=uuid.uuid4().hex
    )
    return claimed == 1


def do_process_event(
    event_id: int, now: datetime | None = None, *, wait_for_retry: bool = True
) -> str | None:
    """Run the registered handler for one event and record what became of it.

    Returns the new status, or ``None`` when the event was not claimed (another worker has it,
    it is already done, or its retry is not due and ``wait_for_retry`` is set)."""
    now = now or clock.now()
    if not _claim(event_id, now, wait_for_retry=wait_for_retry):
        return None
    return _process(InboundEvent.objects.get(pk=event_id), now)


def _process(event: InboundEvent, now: datetime) -> str:
    """Handle one claimed event. The handler and the success record share one transaction; a
    handler error rolls back everything the handler wrote before the failure is recorded."""
    event.attempts += 1
    handler = registry.handler_for(event.kind)
    if handler is None:
        _finish(event, now, InboundEvent.Status.IGNORED, f"no handler for kind {event.kind}")
        return event.status
    try:
        with transaction.atomic():
            note = handler(event)
            _finish(event, now, InboundEvent.Status.PROCESSED, note or "")
    except registry.Ignored as exc:
        _finish(event, now, InboundEvent.Status.IGNORED, str(exc) or "ignored by the handler")
    except Exception as exc:
        logger.warning(
            "inbound event %s: handler failed (attempt %s)", event.pk, event.attempts, exc_info=True
        )
        _record_failure(event, now, f"{type(exc).__name__}: {exc}")
    return event.status


def claim_batch(now: datetime, limit: int = DRAIN_BATCH, *, token: str = "") -> list[int]:
    """Take up to ``limit`` due events, oldest first, so that no other worker takes them:
    ``select_for_update(skip_locked)`` on PostgreSQL, one conditional update elsewhere. The
    claim is committed here: the events' lease starts now."""
    token = token or uuid.uuid4().hex
    # A fresh alarm is its own task's (the fast lane): a drain behind a backlog must not hold it.
    # An older one (its task was lost with a worker) is the drain's like any other event.
    fresh_alarm = Q(kind=registry.ALARM_STATE_CHANGE, received_at__gte=now - ALARM_LANE_GRACE)
    due = InboundEvent.objects.due(now).exclude(fresh_alarm).order_by("received_at", "id")
    claimed = {"status": InboundEvent.Status.PROCESSING, "claimed_at": now, "claim": token}
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
            InboundEvent.objects.filter(id__in=ids).update(**claimed)
        return ids
    candidates = list(due.values_list("id", flat=True)[:limit])
    InboundEvent.objects.due(now).exclude(fresh_alarm).filter(id__in=candidates).update(**claimed)
    return list(
        InboundEvent.objects.filter(claim=token)
        .order_by("received_at", "id")
        .values_list("id", flat=True)
    )


def do_drain_inbox(
    *, budget: float = DRAIN_SECONDS, monotonic: Callable[[], float] = time.monotonic
) -> Counter[str]:
    """Process due events in claimed batches until none is left or ``budget`` seconds passed
    (checked before every event); then give back what was not reached and ask for another drain,
    which goes behind what was queued meanwhile. Fresh alarms are left to their own tasks (the
    alarm cluster's)."""
    DrainRequest.objects.filter(pk=1).update(requested_at=None)  # later events ask again
    started = monotonic()
    outcomes: Counter[str] = Counter()
    while True:
        if monotonic() - started >= budget:
            request_drain(clock.now())  # the last batch was full: there may be more
            return outcomes
        claimed_at = clock.now()
        token = uuid.uuid4().hex
        ids = claim_batch(claimed_at, token=token)
        if ids:
            # The claim's token in the log: which worker held which events.
            logs.task_logger.info("drain %s claimed %s events", token, len(ids))
        pending = list(InboundEvent.objects.filter(id__in=ids).order_by("received_at", "id"))
        while pending:
            # Many events to a commit (a commit waits for the disk), but never more than about
            # COMMIT_SECONDS of work, so SQLite's one writer is not held for long either.
            with transaction.atomic():
                chunk_started = monotonic()
                while pending and monotonic() - started < budget:
                    outcomes[_drain_one(pending.pop(0), claimed_at)] += 1
                    if monotonic() - chunk_started >= COMMIT_SECONDS:
                        break
            if pending and monotonic() - started >= budget:
                # Over budget (checked before every event): give the rest back and ask for a
                # drain that queues behind what came meanwhile, rather than holding a worker.
                _release_claims(token, [event.pk for event in pending])
                request_drain(clock.now())
                return outcomes
        if len(ids) < DRAIN_BATCH:
            return outcomes


def _drain_one(event: InboundEvent, claimed_at: datetime) -> str:
    now = clock.now()
    # The lease ran from the claim: once half of it is gone (a slow batch), check the event is
    # still ours and start its lease again, or another worker takes (and handles again) events
    # this drain has not reached yet. On PostgreSQL the renewal also locks the row until the
    # commit, so no other claim can take it meanwhile.
    if now - claimed_at >= PROCESSING_LEASE / 2 and not _renew_claim(event, now):
        return "taken by another worker"
    # Each event's lines carry the id of the request that delivered it, as its own task's would
    # (console.logs).
    with logs.bound(event_id=event.pk, request_id=event.request_id or None):
        status = _process(event, now)
        logs.task_logger.info("inbound event %s %s by the drain", event.pk, status)
    return status


def _release_claims(token: str, event_ids: list[int]) -> None:
    """Events a drain claimed and did not reach: due again at once for whoever drains next."""
    InboundEvent.objects.filter(
        pk__in=event_ids, claim=token, status=InboundEvent.Status.PROCESSING
    ).update(status=InboundEvent.Status.RECEIVED, claim="", claimed_at=None)


def _renew_claim(event: InboundEvent, now: datetime) -> bool:
    """Still ours (its lease did not end and nobody re-took it)? Then start its lease again."""
    renewed = InboundEvent.objects.filter(
        pk=event.pk, claim=event.claim, status=InboundEvent.Status.PROCESSING
    ).update(claimed_at=now)
    return renewed == 1


def do_resume_stalled(now: datetime | None = None) -> dict[str, int]:
    """Hand on what a dead worker held, without waiting for the minute pass: run every
    ``WATCH_SECONDS`` by each host's ``qcluster`` (console/management/commands/qcluster.py).

    - events whose lease ended (their drain died): a drain, which takes them first (oldest);
    - a drain asked for more than ``STALLED_AFTER`` ago and not started (its task was lost):
      another drain;
    - alarms whose task has not taken them after ``STALLED_AFTER``: their task again (the claim
      makes sure each is handled once, whoever gets there first).
    Returns what it handed on."""
    now = now or clock.now()
    alarms = list(
        InboundEvent.objects.due(now)
        .filter(kind=registry.ALARM_STATE_CHANGE, received_at__lt=now - STALLED_AFTER)
        .values_list("pk", flat=True)[:PROCESS_BATCH]
    )
    for pk in alarms:
        enqueue_processing(pk, registry.ALARM_STATE_CHANGE)
    abandoned = InboundEvent.objects.filter(
        status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - PROCESSING_LEASE
    ).exclude(kind=registry.ALARM_STATE_CHANGE)
    lost = DrainRequest.objects.filter(pk=1, requested_at__lt=now - STALLED_AFTER)
    drains = 0
    if abandoned.exists() or lost.exists():
        request_drain(now, force=True)
        drains = 1
    return {"alarms": len(alarms), "drains": drains}


def _finish(event: InboundEvent, now: datetime, status: str, note: str) -> None:
    event.status = status
    event.note = note
    event.processed_at = now
    event.next_attempt_at = None
    event.claimed_at = None
    event.claim = ""
    event.add_history(now, status, note)
    event.save(
        update_fields=[
            "status",
            "note",
            "processed_at",
            "next_attempt_at",
            "claimed_at",
            "claim",
            "attempts",
            "history",
        ]
    )


def _record_failure(event: InboundEvent, now: datetime, error: str) -> None:
    event.error = error
    event.claimed_at = None
    event.claim = ""
    if event.attempts >= MAX_ATTEMPTS:
        event.status = InboundEvent.Status.FAILED
        event.next_attempt_at = None
        event.processed_at = now
        event.add_history(now, "failed", f"attempt {event.attempts}, giving up: {error}")
    else:
        event.status = InboundEvent.Status.RECEIVED
        event.next_attempt_at = now + event.backoff_after(event.attempts)
        event.add_history(
            now,
            "error",
            f"attempt {event.attempts}: {error}; retry at {event.next_attempt_at:%H:%M:%S}",
        )
    event.save(
        update_fields=[
            "status",
            "error",
            "attempts",
            "next_attempt_at",
            "processed_at",
            "claimed_at",
            "claim",
            "history",
        ]
    )


def do_process_pending(
    now: datetime | None = None, *, wait_for_retry: bool = True, limit: int | None = PROCESS_BATCH
) -> Counter[str]:
    """Process pending events oldest first: those accepted while the worker was down and those
    whose retry is due (or, with ``wait_for_retry=False``, every pending event now). When more
    are due than one pass takes, a drain is asked for (a lost drain task is replaced here)."""
    now = now or clock.now()
    pending = InboundEvent.objects.due(now) if wait_for_retry else InboundEvent.objects.pending(now)
    ordered = pending.order_by("received_at", "id").values_list("id", flat=True)
    ids = list(ordered[:limit] if limit else ordered)
    outcomes: Counter[str] = Counter()
    for event_id in ids:
        outcome = do_process_event(event_id, now, wait_for_retry=wait_for_retry)
        outcomes[outcome or "skipped"] += 1
    return outcomes


def do_reprocess_event(event: InboundEvent, *, actor: str, now: datetime | None = None) -> bool:
    """Give a failed event a fresh set of attempts, by hand. Returns False when it is not failed
    (any more)."""
    now = now or clock.now()
    with transaction.atomic():
        changed = InboundEvent.objects.filter(
            Q(pk=event.pk), Q(status=InboundEvent.Status.FAILED)
        ).update(status=InboundEvent.Status.RECEIVED, attempts=0, next_attempt_at=None)
        if not changed:
            return False
        event.refresh_from_db()
        event.add_history(now, "reprocess", f"re-processed by {actor}")
        event.save(update_fields=["history"])
        audit.record(
            actor,
            "webhook.reprocessed",
            target_type="inbound_event",
            target_id=event.pk,
            target_label=f"{event.get_kind_display()} {event.dedupe_key}",
            account_id=event.account_id,
            details={"source": event.source, "last_error": event.error},
            at=now,
        )
        transaction.on_commit(lambda: enqueue_processing(event.pk, event.kind))
    return True
