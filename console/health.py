"""Is the worker doing its job? Read by ``/healthz/worker``, the dashboard and ``/metrics``.

Two questions, each answered from a handful of rows (three small queries in all):

- **worker**: ``silent`` when no cluster has beaten for ``SILENT_AFTER`` (or none ever did). The
  workers beat every 30 s (``console.worker``), so four beats in a row were missed.
- **schedules**: ``missing`` when a registered schedule has no django-q ``Schedule`` row (or one
  that will not repeat): nothing would ever run it. ``overdue`` when a schedule's task has not
  started for more than two of its intervals after it was due (``ScheduleRun.overdue_by``); a
  cron schedule's interval is the time between two of its fires. This catches a cluster whose
  workers beat but whose scheduler or queue is stuck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Max

from console import clock, schedules

SILENT_AFTER = timedelta(minutes=2)


def _minutes(span: timedelta) -> timedelta:
    """Whole minutes: what a banner shows."""
    return timedelta(minutes=int(span.total_seconds() // 60))


@dataclass(frozen=True)
class Overdue:
    name: str
    last_run_at: datetime | None
    interval: timedelta
    late: timedelta
    idle: timedelta | None  # since the last run, in whole minutes; None if it never ran


@dataclass(frozen=True)
class ScheduleState:
    name: str
    last_run_at: datetime | None
    status: str  # ok, missing or overdue


@dataclass(frozen=True)
class WorkerHealth:
    now: datetime
    last_beat: datetime | None
    missing: list[str] = field(default_factory=list)
    overdue: list[Overdue] = field(default_factory=list)
    schedules: list[ScheduleState] = field(default_factory=list)

    @property
    def silent(self) -> bool:
        return self.last_beat is None or self.now - self.last_beat > SILENT_AFTER

    @property
    def silent_for(self) -> timedelta | None:
        """Since the last beat, in whole minutes (what a banner shows); None if never."""
        if self.last_beat is None:
            return None
        return _minutes(self.now - self.last_beat)

    @property
    def heartbeat_age(self) -> timedelta | None:
        return None if self.last_beat is None else self.now - self.last_beat

    @property
    def schedules_status(self) -> str:
        if self.missing:
            return "missing"
        if self.overdue:
            return "overdue"
        return "ok"

    @property
    def ok(self) -> bool:
        return not self.silent and self.schedules_status == "ok"

    def as_json(self) -> dict[str, str]:
        """Status words only: the endpoint answers without signing in."""
        return {
            "status": "ok" if self.ok else "error",
            "worker": "silent" if self.silent else "ok",
            "schedules": self.schedules_status,
        }


def worker_health(now: datetime | None = None) -> WorkerHealth:
    from django_q.models import Schedule

    from console.models import ScheduleRun, WorkerHeartbeat

    now = now or clock.now()
    wanted = schedules.registered()
    names = [recurring.name for recurring in wanted]
    last_beat = WorkerHeartbeat.objects.aggregate(last=Max("last_beat"))["last"]
    present = dict(
        Schedule.objects.filter(name__in=names).exclude(repeats=0).values_list("name", "next_run")
    )
    runs = {run.name: run for run in ScheduleRun.objects.filter(name__in=names)}
    missing, overdue, states = [], [], []
    for recurring in wanted:
        run = runs.get(recurring.name)
        last_run_at = run.last_run_at if run else None
        if recurring.name not in present:
            missing.append(recurring.name)
            states.append(ScheduleState(recurring.name, last_run_at, "missing"))
            continue
        # Without its run row (deleted by hand), django-q's next run tells: it stays in the past
        # while nothing schedules it.
        due = run.due_at(recurring) if run else present[recurring.name]
        late = recurring.overdue_by(due, now)
        if late is not None:
            idle = None if last_run_at is None else _minutes(now - last_run_at)
            interval = recurring.interval_after(due)
            overdue.append(Overdue(recurring.name, last_run_at, interval, late, idle))
        states.append(
            ScheduleState(recurring.name, last_run_at, "ok" if late is None else "overdue")
        )
    return WorkerHealth(
        now=now, last_beat=last_beat, missing=missing, overdue=overdue, schedules=states
    )
