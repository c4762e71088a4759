"""The recurring passes: reconcile (alarm and mapping states read from AWS, so a lost webhook or
a hand-made change is noticed and corrected) and the tick (back-offs that ended, due probes)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q

import audit
from breaker import aws
from breaker.actions.machine import (
    WORKER,
    AlarmChange,
    Cause,
    Mode,
    State,
    do_advance_ramp,
    do_apply_alarm_state,
    do_end_backoff,
    locked,
    target,
    transition,
)
from breaker.actions.mapping import converge_mapping, enqueue_convergence, mark_broken
from breaker.actions.probes import do_probe, enqueue_probe
from breaker.aws import BreakerAwsError
from breaker.models import Breaker, alarm_name_of
from console import clock


@dataclass
class TickReport:
    reconciled: int = 0
    timers: int = 0
    ramp_steps: int = 0
    probes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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
                _apply_alarms(breaker, alarms, actor=actor, now=now)
            try:
                _reconcile_mapping(breaker.pk, now=now, actor=actor)
            except BreakerAwsError as exc:
                report.errors.append(f"{breaker.name}: mapping not read: {exc}")
    return report


def _apply_alarms(
    breaker: Breaker, alarms: dict[str, aws.Alarm], *, actor: str, now: datetime
) -> None:
    for configured in breaker.alarms:
        alarm = alarms.get(alarm_name_of(configured))
        if alarm is None or (configured.startswith("arn:") and configured != alarm.arn):
            continue
        change = AlarmChange(
            account_id=breaker.account.account_id,
            region=breaker.region,
            alarm_name=alarm.name,
            alarm_arn=alarm.arn,
            state=alarm.state,
            reason=alarm.reason,
            changed_at=alarm.changed_at,
        )
        do_apply_alarm_state(breaker, change, actor=actor, cause=Cause.RECONCILE, now=now)


def _reconcile_mapping(breaker_id: int, *, now: datetime, actor: str) -> None:
    breaker = Breaker.objects.select_related("account").get(pk=breaker_id)
    if not breaker.is_managed or breaker.hand_off_pending(now):
        return  # the worker is making the change it was handed: not drift
    mapping = aws.get_mapping(breaker.account, breaker.region, breaker.mapping_uuid)
    if mapping is None:
        mark_broken(breaker, now, f"event source mapping {breaker.mapping_uuid} no longer exists")
        return
    drift = False
    with transaction.atomic():
        row = locked(breaker_id)
        fields = ["mapping_state", "mapping_checked_at"]
        if row.broken:
            audit.record(
                actor, "breaker.repaired", details={"was": row.broken}, at=now, **target(row)
            )
            row.broken = ""
            fields.append("broken")
        row.mapping_state = mapping.state
        row.mapping_checked_at = now
        row.mapping_max_concurrency = mapping.max_concurrency
        fields.append("mapping_max_concurrency")
        # A change handed to the worker long ago whose task was lost: the console finishes it.
        resume = row.mapping_handed_off_at is not None
        row.mapping_handed_off_at = None
        fields.append("mapping_handed_off_at")
        if row.mapping_drifted:
            drift = True
            transition(
                row,
                row.state,
                cause=Cause.DRIFT,
                actor=actor,
                reason=f"the mapping was {mapping.state} while the breaker is {row.get_state_display()}; disabling it again",
                now=now,
                action="breaker.drift_corrected",
                mapping_state=mapping.state,
            )
        # A ramp step (or the restore after it) whose limit did not reach the mapping.
        scaling_off = row.scaling_settling
        row.save(update_fields=fields)
    if drift or resume or scaling_off:
        converge_mapping(breaker_id, now)


def due_probe_ids(now: datetime) -> list[int]:
    return list(Breaker.objects.may_probe(now).values_list("pk", flat=True))


def do_run_due(
    *,
    now: datetime | None = None,
    actor: str = WORKER,
    inline: bool = True,
    report: TickReport | None = None,
) -> TickReport:
    """End the back-offs that are over, take the due steps of gradual closes, then run (or
    enqueue) the due probes."""
    now = now or clock.now()
    report = report or TickReport()
    for breaker in Breaker.objects.filter(mode=Mode.AUTO, state=State.RAMPING, broken=""):
        if do_advance_ramp(breaker, now=now, actor=actor):
            report.ramp_steps += 1
            if inline:
                converge_mapping(breaker.pk, now)
            else:  # the tick hands the AWS call to a task of its own, as a trip from the web
                _hand_off(breaker.pk, now)
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
            enqueue_probe(breaker_id)
            report.probes.append(f"breaker {breaker_id}: probe enqueued")
    return report


def _hand_off(breaker_id: int, now: datetime) -> None:
    with transaction.atomic():
        Breaker.objects.filter(pk=breaker_id).update(mapping_handed_off_at=now)
        transaction.on_commit(lambda: enqueue_convergence(breaker_id))


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
    if managed.filter(half_open | backing_off).exists():
        return True
    ramping = managed.filter(state=State.RAMPING)
    return any((b.next_ramp_step_at or deadline) < deadline for b in ramping)
