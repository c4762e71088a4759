"""The breaker's state machine: every transition in one transaction on the locked row, with its
history row and audit event. Alarms, manual control and the back-off timer move it here; probes
(``probes``) and the mapping (``mapping``) follow from it.

    closed --ALARM--> open --alarm clears / back-off ends / probe requested--> half_open
    half_open --enough probes pass--> closed        half_open --a probe fails--> open (back-off)
    half_open --enough probes pass, gradual close--> ramping --each step quiet--> ramping ...
        --last step quiet--> closed (the mapping's own concurrency back)    ramping --ALARM--> open
    any --trip--> open (forced_open: alarms cannot close it)    any --reset--> closed (auto)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from breaker.models import Breaker, BreakerTransition
from console import clock

Cause = BreakerTransition.Cause
State = Breaker.State
Mode = Breaker.Mode
WORKER = "worker"


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


def target(breaker: Breaker) -> dict[str, Any]:
    return {
        "target_type": "breaker",
        "target_id": breaker.pk,
        "target_label": breaker.name,
        "account_id": breaker.account.account_id,
    }


def locked(breaker_id: int) -> Breaker:
    return Breaker.objects.select_for_update().select_related("account").get(pk=breaker_id)


def transition(
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
        **target(breaker),
    )


def half_open(
    breaker: Breaker, *, cause: str, actor: str, reason: str, now: datetime, **details: Any
) -> list[str]:
    """The one way to half-open: trial messages start again from zero successes."""
    transition(
        breaker,
        State.HALF_OPEN,
        cause=cause,
        actor=actor,
        reason=reason,
        now=now,
        action="breaker.half_opened",
        **details,
    )
    breaker.half_open_successes = 0
    return ["state", "half_open_successes"]


def close(breaker: Breaker, *, cause: str, actor: str, reason: str, now: datetime) -> list[str]:
    """Closed by its probes: the counters start again. A breaker with a gradual close starts
    its ramp instead (the mapping enabled at the first step's maximum concurrency)."""
    fields = ["state", "half_open_successes", "consecutive_failures", "next_probe_at"]
    fields += ["ramp_step", "ramp_step_since"]
    if breaker.gradual_close and breaker.ramp_plan:
        breaker.ramp_step, breaker.ramp_step_since = 0, now
        transition(
            breaker,
            State.RAMPING,
            cause=cause,
            actor=actor,
            reason=f"{reason}; closing gradually: at most {breaker.ramp_plan[0]} at once "
            f"(step 1 of {len(breaker.ramp_plan) + 1})",
            now=now,
            action="breaker.ramp_started",
            concurrency=breaker.ramp_plan[0],
        )
    else:
        breaker.ramp_step = breaker.ramp_step_since = None
        transition(
            breaker,
            State.CLOSED,
            cause=cause,
            actor=actor,
            reason=reason,
            now=now,
            action="breaker.closed",
        )
    breaker.half_open_successes = 0
    breaker.consecutive_failures = 0
    breaker.next_probe_at = None
    return fields


def do_advance_ramp(breaker: Breaker, *, now: datetime | None = None, actor: str = WORKER) -> bool:
    """One step of a gradual close, when the alarm stayed out of ALARM for a whole step: the
    next step's maximum concurrency, or, after the last, closed with the mapping's original
    setting. The caller brings the mapping in line (in the worker)."""
    now = now or clock.now()
    with transaction.atomic():
        row = locked(breaker.pk)
        if not row.ramp_step_due(now):
            return False
        plan, step = row.ramp_plan, row.ramp_step or 0
        held = f"alarm quiet for {row.ramp_step_seconds} s"
        if plan:
            held += f" at {plan[min(step, len(plan) - 1)]}"
        if step + 1 < len(plan):
            row.ramp_step, row.ramp_step_since = step + 1, now
            transition(
                row,
                State.RAMPING,
                cause=Cause.RAMP,
                actor=actor,
                reason=f"{held}: at most {plan[step + 1]} at once "
                f"(step {step + 2} of {len(plan) + 1})",
                now=now,
                action="breaker.ramp_step",
                concurrency=plan[step + 1],
            )
        else:
            row.ramp_step = row.ramp_step_since = None
            transition(
                row,
                State.CLOSED,
                cause=Cause.RAMP,
                actor=actor,
                reason=f"{held}: ramp done, the mapping's own setting is back "
                f"({row.original_scaling_text})",
                now=now,
                action="breaker.closed",
                scaling=row.original_scaling,
            )
        row.save(update_fields=["state", "ramp_step", "ramp_step_since"])
    breaker.refresh_from_db()
    return True


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
    follows no ALARM leaves a breaker opened by a failed probe to its back-off timer). A breaker
    tripped by hand only records the alarm state; an unmanaged one ignores it.
    """
    from breaker.actions.mapping import converge_mapping
    from breaker.actions.probes import enqueue_probe

    now = now or clock.now()
    name = change.alarm_name
    open_mapping = probe_soon = False
    with transaction.atomic():
        row = locked(breaker.pk)
        if row.mode == Mode.DISABLED:
            return f"{row.name}: not managed, alarm {name} {change.state} ignored"
        was_in_alarm = row.in_alarm
        applied = row.applied_change_time(name)
        if applied is not None and change.changed_at <= applied:
            return f"{row.name}: {name} {change.state} at {change.changed_at.isoformat()} already applied or stale"
        row.alarm_states = {
            **row.alarm_states,
            name: {
                "state": change.state,
                "reason": change.reason,
                "changed_at": change.changed_at.isoformat(),
                "arn": change.alarm_arn,
            },
        }
        fields = ["alarm_states"]
        note = f"{row.name}: {name} is {change.state}"
        if row.mode == Mode.AUTO:
            if row.in_alarm and row.state != State.OPEN:
                reason = change.reason or f"{name} in ALARM"
                if row.state == State.RAMPING:
                    reason = f"{reason} (during the gradual close, at {row.ramp_concurrency})"
                transition(
                    row,
                    State.OPEN,
                    cause=cause,
                    actor=actor,
                    reason=reason,
                    now=now,
                    action="breaker.opened",
                    alarm=name,
                )
                row.half_open_successes = 0
                row.next_probe_at = None
                row.ramp_step = row.ramp_step_since = None
                fields += ["state", "half_open_successes", "next_probe_at"]
                fields += ["ramp_step", "ramp_step_since"]
                open_mapping = True
                note += ", breaker opened"
            elif was_in_alarm and not row.in_alarm and row.state == State.OPEN:
                fields += half_open(
                    row,
                    cause=cause,
                    actor=actor,
                    reason=f"{name} left ALARM ({change.state}): {change.reason}".strip(": "),
                    now=now,
                    alarm=name,
                )
                row.next_probe_at = max(now, row.next_probe_at or now)
                fields.append("next_probe_at")
                probe_soon = row.next_probe_at <= now
                note += ", breaker half-open"
        else:
            note += ", breaker tripped by hand stays open"
        row.save(update_fields=fields)
        if probe_soon:
            # The first probe need not wait for the next tick; runs once the change is committed.
            breaker_id = row.pk
            transaction.on_commit(lambda: enqueue_probe(breaker_id))
    if open_mapping:
        converge_mapping(breaker.pk, now, wait=wait)
    return note


def do_end_backoff(breaker: Breaker, *, now: datetime | None = None, actor: str = WORKER) -> bool:
    """An open breaker whose back-off is over goes half-open, unless an alarm is in ALARM."""
    now = now or clock.now()
    with transaction.atomic():
        row = locked(breaker.pk)
        if not row.backoff_ended(now):
            return False
        fields = half_open(
            row, cause=Cause.TIMER, actor=actor, reason="the probe back-off ended", now=now
        )
        row.save(update_fields=fields)
    return True


def do_trip(
    breaker: Breaker,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
    in_worker: bool = False,
) -> None:
    """Open by hand (``forced_open``): alarms cannot close it, only a reset. ``in_worker``: the
    mapping is disabled by the worker after the commit, not in this call."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the breaker is tripped."})
    _set_by_hand(
        breaker, Mode.FORCED_OPEN, State.OPEN, "breaker.tripped", actor, reason, now, in_worker
    )


def do_reset(
    breaker: Breaker,
    *,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
    in_worker: bool = False,
) -> None:
    """Close by hand and hand the breaker back to its alarms: enable the mapping, mode auto.
    ``in_worker``: the mapping is enabled by the worker after the commit, not in this call."""
    reason = (reason or "reset").strip()
    _set_by_hand(breaker, Mode.AUTO, State.CLOSED, "breaker.reset", actor, reason, now, in_worker)


def _set_by_hand(
    breaker: Breaker,
    mode: str,
    state: str,
    action: str,
    actor: str,
    reason: str,
    now: datetime | None,
    in_worker: bool,
) -> None:
    """A trip or a reset: the mode and state an operator chose, the probe counters and lease
    cleared, then the mapping brought in line (now, or by the worker after the commit)."""
    from breaker.actions.mapping import converge_mapping, enqueue_convergence

    now = now or clock.now()
    with transaction.atomic():
        row = locked(breaker.pk)
        row.mode = mode
        row.half_open_successes = 0
        row.consecutive_failures = 0 if state == State.CLOSED else row.consecutive_failures
        row.next_probe_at = None
        row.probe_lease_until = None
        row.ramp_step = row.ramp_step_since = None  # a reset closes at once, a trip ends a ramp
        transition(
            row, state, cause=Cause.MANUAL, actor=actor, reason=reason, now=now, action=action
        )
        fields = ["mode", "state", "half_open_successes", "consecutive_failures"]
        fields += ["next_probe_at", "probe_lease_until", "ramp_step", "ramp_step_since"]
        if in_worker:  # the web answers at once; the page follows the worker
            row.mapping_handed_off_at = now
            fields.append("mapping_handed_off_at")
            transaction.on_commit(partial(enqueue_convergence, breaker.pk))
        row.save(update_fields=fields)
    if not in_worker:  # the CLI waits for the mapping
        converge_mapping(breaker.pk, now)
    breaker.refresh_from_db()


def do_set_managed(
    breaker: Breaker, *, managed: bool, actor: str, now: datetime | None = None
) -> bool:
    """Turn management off (the console leaves the mapping alone) or back on (automatic)."""
    now = now or clock.now()
    with transaction.atomic():
        row = locked(breaker.pk)
        if row.is_managed == managed:
            return False
        row.mode = Mode.AUTO if managed else Mode.DISABLED
        row.probe_lease_until = None
        row.save(update_fields=["mode", "probe_lease_until"])
        audit.record(
            actor,
            "breaker.management_enabled" if managed else "breaker.management_disabled",
            details={"state": row.state},
            at=now,
            **target(row),
        )
    breaker.refresh_from_db()
    return True
