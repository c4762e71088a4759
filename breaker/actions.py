"""Every change to a breaker: state in one transaction with its history row and audit event,
then the event source mapping brought in line with that state.

Order matters. The state change is committed first and the AWS call comes after it (the wait for
``Disabled`` can take seconds and must not hold the database; an alarm handler runs inside the
inbox's transaction, so there the mapping is changed at once and the wait runs after the
commit). If the AWS call fails, the state is still right and the error is stored on the
breaker; the reconcile pass (every minute) sees the mapping disagree with the state and corrects
it. ``_converge_mapping`` always moves the mapping toward the breaker's state *as it is now*,
re-read after each call, so an ALARM that lands while a close is enabling the mapping still ends
with the mapping disabled.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django_q.tasks import async_task

import audit
from accounts.models import AwsAccount
from breaker import aws, probing
from breaker.aws import BreakerAwsError
from breaker.models import Breaker, BreakerTransition, Probe, alarm_name_of
from console import clock

logger = logging.getLogger(__name__)

Cause = BreakerTransition.Cause
State = Breaker.State
Mode = Breaker.Mode
WORKER = "worker"
SETTINGS_FIELDS = [
    "alarms",
    "successes_to_close",
    "probe_interval_seconds",
    "backoff_seconds",
    "backoff_cap_seconds",
    "probe_visibility_timeout_seconds",
    "close_when_queue_empty",
]
# A probe task may run as long as the probe's lease (the function's timeout, up to 15 minutes,
# plus a margin); Q_CLUSTER["retry"] stays above that, so no probe task is handed to a second
# worker while it runs (and one that were would find the lease held).
PROBE_TASK_TIMEOUT_FLOOR = 120


@dataclass(frozen=True)
class AlarmChange:
    """One alarm state change, from a notification, an EventBridge event or DescribeAlarms."""

    account_id: str
    region: str
    alarm_name: str
    alarm_arn: str
    state: str
    reason: str
    changed_at: datetime


@dataclass
class TickReport:
    reconciled: int = 0
    timers: int = 0
    probes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _target(breaker: Breaker) -> dict[str, Any]:
    return {
        "target_type": "breaker",
        "target_id": breaker.pk,
        "target_label": breaker.name,
        "account_id": breaker.account.account_id,
    }


def _locked(breaker_id: int) -> Breaker:
    return Breaker.objects.select_for_update().select_related("account").get(pk=breaker_id)


def _transition(
    breaker: Breaker,
    to: str,
    *,
    cause: str,
    actor: str,
    reason: str,
    now: datetime,
    action: str,
    **details: Any,
) -> None:
    """Move the (locked) row to ``to`` and write the history row and the audit event."""
    from_state = breaker.state
    breaker.state = to
    BreakerTransition.objects.create(
        breaker=breaker,
        from_state=from_state,
        to_state=to,
        cause=cause,
        actor=actor,
        reason=reason,
        at=now,
    )
    audit.record(
        actor,
        action,
        details={"from": from_state, "to": to, "cause": cause, "reason": reason, **details},
        at=now,
        **_target(breaker),
    )


def _enqueue_probe(breaker_id: int) -> None:
    lease = Breaker.objects.get(pk=breaker_id).probe_lease.total_seconds()
    timeout = max(PROBE_TASK_TIMEOUT_FLOOR, int(lease))
    async_task("breaker.tasks.probe", breaker_id, timeout=timeout, group="breaker")


# ---- the event source mapping -----------------------------------------------------------------


def _converge_mapping(
    breaker_id: int, now: datetime, *, attempts: int = 3, wait: bool = True
) -> str:
    """Enable the mapping of a closed breaker, disable it otherwise, wait for the stable state,
    and store what AWS reports. Never raises for AWS errors: they are stored on the breaker.

    ``wait=False`` is for callers inside someone else's transaction (the inbox runs handlers in
    one): the change is made at once, the wait for the stable state runs after the commit, so
    the database is not held while Lambda finishes disabling."""
    error = ""
    state = ""
    for _ in range(attempts):
        breaker = Breaker.objects.select_related("account").get(pk=breaker_id)
        if not breaker.is_managed or breaker.broken:
            return breaker.mapping_state
        enabled = breaker.mapping_should_poll
        wanted = "Enabled" if enabled else "Disabled"
        try:
            mapping = aws.set_mapping_enabled(
                breaker.account, breaker.region, breaker.mapping_uuid, enabled
            )
            if wait:
                mapping = aws.wait_for_mapping(
                    breaker.account, breaker.region, breaker.mapping_uuid, wanted, first=mapping
                )
            state, error = mapping.state, ""
        except BreakerAwsError as exc:
            if _mapping_gone(exc, breaker, now):
                return ""
            logger.warning(
                "breaker %s: mapping %s not %s: %s", breaker.name, breaker.mapping_uuid, wanted, exc
            )
            error = f"{now:%Y-%m-%d %H:%M:%S} could not make the mapping {wanted}: {exc}"
            state = breaker.mapping_state
        _store_mapping(breaker_id, state, error, now)
        if error:
            return state
        if not wait:
            transaction.on_commit(partial(_await_mapping, breaker_id, wanted, now))
            return state
        # The state may have changed while AWS was answering: go again if so.
        if Breaker.objects.get(pk=breaker_id).mapping_should_poll == enabled:
            return state
    return state


def _await_mapping(breaker_id: int, wanted: str, now: datetime) -> None:
    """After the commit of a change made without waiting: wait for the stable state, store it,
    and converge again if the breaker changed its mind meanwhile."""
    breaker = Breaker.objects.select_related("account").get(pk=breaker_id)
    try:
        mapping = aws.wait_for_mapping(
            breaker.account, breaker.region, breaker.mapping_uuid, wanted
        )
    except BreakerAwsError as exc:
        if not _mapping_gone(exc, breaker, now):
            _store_mapping(breaker_id, breaker.mapping_state, f"{now:%Y-%m-%d %H:%M:%S} {exc}", now)
        return
    _store_mapping(breaker_id, mapping.state, "", now)
    if Breaker.objects.get(pk=breaker_id).mapping_should_poll != (wanted == "Enabled"):
        _converge_mapping(breaker_id, now)


def _store_mapping(breaker_id: int, state: str, error: str, now: datetime) -> None:
    Breaker.objects.filter(pk=breaker_id).update(
        mapping_state=state, mapping_error=error, mapping_checked_at=now
    )


def _mapping_gone(exc: BreakerAwsError, breaker: Breaker, now: datetime) -> bool:
    if exc.code != "ResourceNotFoundException":
        return False
    _mark_broken(breaker, now, f"event source mapping {breaker.mapping_uuid} no longer exists")
    return True


def _mark_broken(breaker: Breaker, now: datetime, why: str) -> None:
    with transaction.atomic():
        locked = _locked(breaker.pk)
        if locked.broken == why:
            return
        locked.broken = why
        locked.mapping_state = ""
        locked.probe_lease_until = None
        locked.save(update_fields=["broken", "mapping_state", "probe_lease_until"])
        audit.record(WORKER, "breaker.broken", details={"reason": why}, at=now, **_target(locked))


# ---- alarms -------------------------------------------------------------------------------


def do_apply_alarm_state(
    breaker: Breaker,
    change: AlarmChange,
    *,
    actor: str,
    cause: str = Cause.ALARM,
    now: datetime | None = None,
    wait: bool = True,
) -> str:
    """Apply one alarm state change to one breaker; returns a note of what happened.

    Idempotent and order-safe: a change not newer than the one already applied for that alarm
    (same ``StateChangeTime``: a duplicate or retry; older: a late delivery) changes nothing.
    ALARM on any watched alarm opens an automatic breaker; when the last watched alarm in ALARM
    leaves it, an open breaker goes half-open (not before its probe back-off ends; an OK that
    follows no ALARM leaves a breaker opened by a failed probe to its back-off timer). A breaker tripped
    by hand only records the alarm state; an unmanaged one ignores it.
    """
    now = now or clock.now()
    name = change.alarm_name
    open_mapping = probe_soon = False
    with transaction.atomic():
        locked = _locked(breaker.pk)
        if locked.mode == Mode.DISABLED:
            return f"{locked.name}: not managed, alarm {name} {change.state} ignored"
        was_in_alarm = locked.in_alarm
        applied = locked.applied_change_time(name)
        if applied is not None and change.changed_at <= applied:
            return f"{locked.name}: {name} {change.state} at {change.changed_at.isoformat()} already applied or stale"
        locked.alarm_states = {
            **locked.alarm_states,
            name: {
                "state": change.state,
                "reason": change.reason,
                "changed_at": change.changed_at.isoformat(),
                "arn": change.alarm_arn,
            },
        }
        fields = ["alarm_states"]
        note = f"{locked.name}: {name} is {change.state}"
        if locked.mode == Mode.AUTO:
            if locked.in_alarm and locked.state != State.OPEN:
                _transition(
                    locked,
                    State.OPEN,
                    cause=cause,
                    actor=actor,
                    reason=change.reason or f"{name} in ALARM",
                    now=now,
                    action="breaker.opened",
                    alarm=name,
                )
                locked.half_open_successes = 0
                locked.next_probe_at = None
                fields += ["state", "half_open_successes", "next_probe_at"]
                open_mapping = True
                note += ", breaker opened"
            elif was_in_alarm and not locked.in_alarm and locked.state == State.OPEN:
                _transition(
                    locked,
                    State.HALF_OPEN,
                    cause=cause,
                    actor=actor,
                    reason=f"{name} left ALARM ({change.state}): {change.reason}".strip(": "),
                    now=now,
                    action="breaker.half_opened",
                    alarm=name,
                )
                locked.half_open_successes = 0
                locked.next_probe_at = max(now, locked.next_probe_at or now)
                fields += ["state", "half_open_successes", "next_probe_at"]
                probe_soon = locked.next_probe_at <= now
                note += ", breaker half-open"
        else:
            note += ", breaker tripped by hand stays open"
        locked.save(update_fields=fields)
        if probe_soon:
            # The first probe need not wait for the next tick; runs once the change is committed.
            breaker_id = locked.pk
            transaction.on_commit(lambda: _enqueue_probe(breaker_id))
    if open_mapping:
        _converge_mapping(breaker.pk, now, wait=wait)
    return note


# ---- probes -------------------------------------------------------------------------------


def _lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:120]


def claim_probe(breaker: Breaker, now: datetime, owner: str) -> bool:
    """Take the probe lease with one conditional update: of two workers only one sees 1."""
    due = Q(next_probe_at__isnull=True) | Q(next_probe_at__lte=now)
    free = Q(probe_lease_until__isnull=True) | Q(probe_lease_until__lte=now)
    claimed = Breaker.objects.filter(
        due, free, pk=breaker.pk, mode=Mode.AUTO, state=State.HALF_OPEN, broken=""
    ).update(probe_lease_until=now + breaker.probe_lease, probe_lease_owner=owner)
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
    import json

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
    converge = False
    with transaction.atomic():
        locked = _locked(breaker_id)
        probe = Probe.objects.create(
            breaker=locked,
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
            **_target(locked),
        )
        fields = ["probe_lease_until", "probe_lease_owner"]
        if locked.probe_lease_owner == owner:
            locked.probe_lease_until = None
            locked.probe_lease_owner = ""
        # The alarm, an operator or the reconcile may have moved the breaker meanwhile: then the
        # probe is history only.
        if locked.mode == Mode.AUTO and locked.state == State.HALF_OPEN:
            fields += ["state", "half_open_successes", "consecutive_failures", "next_probe_at"]
            interval = timedelta(seconds=locked.probe_interval_seconds)
            if outcome == Probe.Outcome.PASSED:
                locked.half_open_successes += 1
                if locked.half_open_successes >= locked.successes_to_close:
                    _close(locked, now, actor, f"{locked.half_open_successes} probes passed")
                    converge = True
                else:
                    locked.next_probe_at = now + interval
            elif outcome == Probe.Outcome.FAILED:
                backoff = locked.next_backoff()
                locked.consecutive_failures += 1
                locked.half_open_successes = 0
                locked.next_probe_at = now + backoff
                _transition(
                    locked,
                    State.OPEN,
                    cause=Cause.PROBE,
                    actor=actor,
                    reason=detail,
                    now=now,
                    action="breaker.opened",
                    backoff_seconds=int(backoff.total_seconds()),
                )
                converge = True
            elif outcome == Probe.Outcome.NO_MESSAGE and locked.close_when_queue_empty:
                _close(locked, now, actor, "the queue was empty")
                converge = True
            else:
                locked.next_probe_at = now + interval
        locked.save(update_fields=fields)
    if converge:
        _converge_mapping(breaker_id, now)
    return probe


def _close(locked: Breaker, now: datetime, actor: str, reason: str) -> None:
    _transition(
        locked,
        State.CLOSED,
        cause=Cause.PROBE,
        actor=actor,
        reason=reason,
        now=now,
        action="breaker.closed",
    )
    locked.half_open_successes = 0
    locked.consecutive_failures = 0
    locked.next_probe_at = None


def do_end_backoff(breaker: Breaker, *, now: datetime | None = None, actor: str = WORKER) -> bool:
    """An open breaker whose back-off is over goes half-open, unless an alarm is in ALARM."""
    now = now or clock.now()
    with transaction.atomic():
        locked = _locked(breaker.pk)
        if not locked.backoff_ended(now):
            return False
        _transition(
            locked,
            State.HALF_OPEN,
            cause=Cause.TIMER,
            actor=actor,
            reason="the probe back-off ended",
            now=now,
            action="breaker.half_opened",
        )
        locked.half_open_successes = 0
        locked.save(update_fields=["state", "half_open_successes"])
    return True


# ---- manual control -----------------------------------------------------------------------


def do_trip(breaker: Breaker, *, actor: str, reason: str, now: datetime | None = None) -> None:
    """Open by hand (``forced_open``): alarms cannot close it, only a reset."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the breaker is tripped."})
    now = now or clock.now()
    with transaction.atomic():
        locked = _locked(breaker.pk)
        locked.mode = Mode.FORCED_OPEN
        locked.half_open_successes = 0
        locked.next_probe_at = None
        locked.probe_lease_until = None
        _transition(
            locked,
            State.OPEN,
            cause=Cause.MANUAL,
            actor=actor,
            reason=reason,
            now=now,
            action="breaker.tripped",
        )
        locked.save(
            update_fields=[
                "mode",
                "state",
                "half_open_successes",
                "next_probe_at",
                "probe_lease_until",
            ]
        )
    _converge_mapping(breaker.pk, now)
    breaker.refresh_from_db()


def do_reset(
    breaker: Breaker, *, actor: str, reason: str = "", now: datetime | None = None
) -> None:
    """Close by hand and hand the breaker back to its alarms: enable the mapping, mode auto."""
    now = now or clock.now()
    with transaction.atomic():
        locked = _locked(breaker.pk)
        locked.mode = Mode.AUTO
        locked.half_open_successes = 0
        locked.consecutive_failures = 0
        locked.next_probe_at = None
        locked.probe_lease_until = None
        _transition(
            locked,
            State.CLOSED,
            cause=Cause.MANUAL,
            actor=actor,
            reason=(reason or "reset").strip(),
            now=now,
            action="breaker.reset",
        )
        locked.save(
            update_fields=[
                "mode",
                "state",
                "half_open_successes",
                "consecutive_failures",
                "next_probe_at",
                "probe_lease_until",
            ]
        )
    _converge_mapping(breaker.pk, now)
    breaker.refresh_from_db()


def do_probe_now(breaker: Breaker, *, actor: str, now: datetime | None = None) -> Probe | None:
    """An operator asks for a probe now: an open automatic breaker goes half-open for it."""
    now = now or clock.now()
    with transaction.atomic():
        locked = _locked(breaker.pk)
        if locked.mode != Mode.AUTO or locked.state == State.CLOSED or locked.broken:
            raise ValidationError(
                "Only an open or half-open breaker under automatic control can be probed."
            )
        if locked.in_alarm:
            raise ValidationError("An alarm is in ALARM: the breaker stays open until it clears.")
        if locked.state == State.OPEN:
            _transition(
                locked,
                State.HALF_OPEN,
                cause=Cause.MANUAL,
                actor=actor,
                reason="probe requested",
                now=now,
                action="breaker.half_opened",
            )
            locked.half_open_successes = 0
        locked.next_probe_at = now
        locked.save(update_fields=["state", "half_open_successes", "next_probe_at"])
    probe = do_probe(breaker.pk, now=now, actor=actor)
    breaker.refresh_from_db()
    return probe


def do_set_managed(
    breaker: Breaker, *, managed: bool, actor: str, now: datetime | None = None
) -> bool:
    """Turn management off (the console leaves the mapping alone) or back on (automatic)."""
    now = now or clock.now()
    with transaction.atomic():
        locked = _locked(breaker.pk)
        if locked.is_managed == managed:
            return False
        locked.mode = Mode.AUTO if managed else Mode.DISABLED
        locked.probe_lease_until = None
        locked.save(update_fields=["mode", "probe_lease_until"])
        audit.record(
            actor,
            "breaker.management_enabled" if managed else "breaker.management_disabled",
            details={"state": locked.state},
            at=now,
            **_target(locked),
        )
    breaker.refresh_from_db()
    return True


# ---- adding and editing -------------------------------------------------------------------


class DiscoveryError(Exception):
    pass


@dataclass(frozen=True)
class Discovery:
    mappings: list[aws.Mapping]
    alarms: list[aws.Alarm]


def discover_targets(account: AwsAccount, region: str) -> Discovery:
    """What the add form offers: the SQS event source mappings of the region (so nobody types a
    UUID) and the account's alarms there."""
    try:
        return Discovery(
            mappings=aws.sqs_mappings(account, region), alarms=aws.list_alarms(account, region)
        )
    except BreakerAwsError as exc:
        raise DiscoveryError(f"Could not read {account.account_id} in {region}: {exc}") from exc


def do_add_breaker(
    *,
    actor: str,
    name: str,
    account: AwsAccount,
    region: str,
    function_name: str,
    alarms: list[str],
    mapping_uuid: str = "",
    now: datetime | None = None,
    **settings: Any,
) -> Breaker:
    """Register a breaker on a function's SQS event source mapping. The mapping is looked up in
    AWS (found by function when it has exactly one SQS mapping); raises ``ValidationError`` with
    a precise message and writes nothing when anything does not fit."""
    now = now or clock.now()
    unknown = set(settings) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}")
    alarms = [alarm.strip() for alarm in alarms if alarm and alarm.strip()]
    if not alarms:
        raise ValidationError({"alarms": "Name at least one alarm that opens the breaker."})
    if Breaker.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A breaker named {name} exists already."})
    try:
        function = aws.function_config(account, region, function_name)
        if function is None:
            raise ValidationError(
                {"function_name": f"No function {function_name} in {account.account_id} {region}."}
            )
        if mapping_uuid:
            mapping = aws.get_mapping(account, region, mapping_uuid)
            if mapping is None:
                raise ValidationError(
                    {"mapping_uuid": f"No event source mapping {mapping_uuid} in {region}."}
                )
            if mapping.function_name != function.name:
                raise ValidationError(
                    {
                        "mapping_uuid": f"Mapping {mapping_uuid} belongs to {mapping.function_name}, not {function.name}."
                    }
                )
            if not mapping.is_sqs:
                raise ValidationError(
                    {"mapping_uuid": f"Mapping {mapping_uuid} does not read an SQS queue."}
                )
        else:
            mappings = aws.sqs_mappings(account, region, function.name)
            if len(mappings) != 1:
                raise ValidationError(
                    {
                        "mapping_uuid": f"{function.name} has {len(mappings)} SQS event source mappings; name one."
                    }
                )
            mapping = mappings[0]
        url = aws.queue_url(account, region, mapping.event_source_arn)
        _check_alarms(alarms, account, region)
    except BreakerAwsError as exc:
        raise ValidationError(f"AWS did not answer: {exc}") from exc
    breaker = Breaker(
        name=name,
        account=account,
        region=region,
        function_name=function.name,
        mapping_uuid=mapping.uuid,
        queue_arn=mapping.event_source_arn,
        queue_url=url,
        alarms=alarms,
        reports_batch_item_failures=mapping.reports_batch_item_failures,
        function_timeout_seconds=function.timeout,
        mapping_state=mapping.state,
        mapping_checked_at=now,
        **settings,
    )
    breaker.full_clean()
    with transaction.atomic():
        breaker.save()
        audit.record(
            actor,
            "breaker.added",
            details={
                "function": breaker.function_name,
                "mapping": breaker.mapping_uuid,
                "queue": breaker.queue_arn,
                "alarms": alarms,
                **{f: getattr(breaker, f) for f in SETTINGS_FIELDS if f != "alarms"},
            },
            at=now,
            **_target(breaker),
        )
    return breaker


def _check_alarms(alarms: list[str], account: AwsAccount, region: str) -> None:
    """Notifications are matched in the breaker's account and region: an ARN elsewhere would
    never match."""
    for alarm in alarms:
        if alarm.startswith("arn:") and (
            alarm.split(":")[3:5] != [region, account.account_id] or ":alarm:" not in alarm
        ):
            raise ValidationError(
                {"alarms": f"{alarm} is not an alarm of {account.account_id} in {region}."}
            )


def do_update_settings(
    breaker: Breaker, *, actor: str, now: datetime | None = None, **changes: Any
) -> list[str]:
    now = now or clock.now()
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        locked = _locked(breaker.pk)
        before = {name: getattr(locked, name) for name in changes}
        changed = [name for name, value in changes.items() if before[name] != value]
        if not changed:
            return []
        for name in changed:
            setattr(locked, name, changes[name])
        if "alarms" in changed:
            if not locked.alarms:
                raise ValidationError({"alarms": "Name at least one alarm that opens the breaker."})
            _check_alarms(locked.alarms, locked.account, locked.region)
        locked.full_clean()
        locked.save(update_fields=changed)
        audit.record(
            actor,
            "breaker.settings_changed",
            details={name: {"from": before[name], "to": changes[name]} for name in changed},
            at=now,
            **_target(locked),
        )
    breaker.refresh_from_db()
    return changed


# ---- reconcile and tick -------------------------------------------------------------------


def do_reconcile(*, now: datetime | None = None, actor: str = WORKER) -> TickReport:
    """Read every managed breaker's alarms (DescribeAlarms, batched per account and region) and
    mapping. A lost notification cannot leave a breaker open after its alarm cleared, or closed
    during an alarm; a mapping enabled by hand while the breaker is open is disabled again and
    the drift recorded; a deleted mapping marks the breaker broken."""
    now = now or clock.now()
    report = TickReport()
    groups: dict[tuple[int, str], list[Breaker]] = defaultdict(list)
    for breaker in Breaker.objects.managed().select_related("account"):
        groups[(breaker.account_id, breaker.region)].append(breaker)
    for breakers in groups.values():
        account, region = breakers[0].account, breakers[0].region
        try:
            alarms = aws.describe_alarms(
                account, region, {n for b in breakers for n in b.alarm_names}
            )
        except BreakerAwsError as exc:
            report.errors.append(f"{account.account_id} {region}: alarms not read: {exc}")
            alarms = None
        for breaker in breakers:
            report.reconciled += 1
            if alarms is not None:
                for configured in breaker.alarms:
                    alarm = alarms.get(alarm_name_of(configured))
                    if alarm is None or (configured.startswith("arn:") and configured != alarm.arn):
                        continue
                    change = AlarmChange(
                        account_id=account.account_id,
                        region=region,
                        alarm_name=alarm.name,
                        alarm_arn=alarm.arn,
                        state=alarm.state,
                        reason=alarm.reason,
                        changed_at=alarm.changed_at,
                    )
                    do_apply_alarm_state(
                        breaker, change, actor=actor, cause=Cause.RECONCILE, now=now
                    )
            try:
                _reconcile_mapping(breaker.pk, now=now, actor=actor)
            except BreakerAwsError as exc:
                report.errors.append(f"{breaker.name}: mapping not read: {exc}")
    return report


def _reconcile_mapping(breaker_id: int, *, now: datetime, actor: str) -> None:
    breaker = Breaker.objects.select_related("account").get(pk=breaker_id)
    if not breaker.is_managed:
        return
    mapping = aws.get_mapping(breaker.account, breaker.region, breaker.mapping_uuid)
    if mapping is None:
        _mark_broken(breaker, now, f"event source mapping {breaker.mapping_uuid} no longer exists")
        return
    drift = False
    with transaction.atomic():
        locked = _locked(breaker_id)
        fields = ["mapping_state", "mapping_checked_at"]
        if locked.broken:
            audit.record(
                actor, "breaker.repaired", details={"was": locked.broken}, at=now, **_target(locked)
            )
            locked.broken = ""
            fields.append("broken")
        locked.mapping_state = mapping.state
        locked.mapping_checked_at = now
        if locked.mapping_drifted:
            drift = True
            _transition(
                locked,
                locked.state,
                cause=Cause.DRIFT,
                actor=actor,
                reason=f"the mapping was {mapping.state} while the breaker is {locked.get_state_display()}; disabling it again",
                now=now,
                action="breaker.drift_corrected",
                mapping_state=mapping.state,
            )
        locked.save(update_fields=fields)
    if drift:
        _converge_mapping(breaker_id, now)


def due_probe_ids(now: datetime) -> list[int]:
    return list(
        Breaker.objects.filter(mode=Mode.AUTO, state=State.HALF_OPEN, broken="")
        .filter(Q(next_probe_at__isnull=True) | Q(next_probe_at__lte=now))
        .filter(Q(probe_lease_until__isnull=True) | Q(probe_lease_until__lte=now))
        .values_list("pk", flat=True)
    )


def do_run_due(
    *,
    now: datetime | None = None,
    actor: str = WORKER,
    inline: bool = True,
    report: TickReport | None = None,
) -> TickReport:
    """End the back-offs that are over, then run (or enqueue) the due probes."""
    now = now or clock.now()
    report = report or TickReport()
    for breaker in Breaker.objects.filter(
        mode=Mode.AUTO, state=State.OPEN, broken="", next_probe_at__lte=now
    ):
        if do_end_backoff(breaker, now=now, actor=actor):
            report.timers += 1
    for breaker_id in due_probe_ids(now):
        if inline:
            probe = do_probe(breaker_id, now=now, actor=actor)
            if probe is not None:
                report.probes.append(f"{probe.breaker.name}: {probe.get_outcome_display()}")
        else:
            _enqueue_probe(breaker_id)
            report.probes.append(f"breaker {breaker_id}: probe enqueued")
    return report


def do_tick(*, now: datetime | None = None, actor: str = WORKER, inline: bool = True) -> TickReport:
    """Reconcile, end the back-offs that are over, then run (or enqueue) the due probes."""
    now = now or clock.now()
    report = do_reconcile(now=now, actor=actor)
    return do_run_due(now=now, actor=actor, inline=inline, report=report)


def recovering_before(deadline: datetime) -> bool:
    """Whether a breaker will want a probe, or its back-off will end, before ``deadline``."""
    managed = Breaker.objects.filter(mode=Mode.AUTO, broken="")
    half_open = Q(state=State.HALF_OPEN) & (
        Q(next_probe_at__isnull=True) | Q(next_probe_at__lt=deadline)
    )
    backing_off = Q(state=State.OPEN, next_probe_at__lt=deadline)
    return managed.filter(half_open | backing_off).exists()
