"""Recurring worker schedules, declared by each app and written idempotently.

An app declares its schedules in ``AppConfig.ready``::

    schedules.register("cleanup.run-due", "cleanup.tasks.run_due_checks", minutes=1)

The django-q ``Schedule`` rows are created or updated by name, so deploying twice never
duplicates a schedule and a changed interval takes effect on the next deploy. Three doors write
them: every ``migrate`` (``post_migrate``, also sent by ``flush``), every worker start (the
console's ``qcluster`` command), and ``manage.py sync_schedules``. A database restored from a
backup that predates a schedule, or emptied, is therefore whole again once a worker starts.

Beside each schedule a ``console.ScheduleRun`` row remembers when the schedule was first written
and when a worker last started its task (``console.worker``), which is what ``/healthz/worker``
reads to call a schedule overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone


@dataclass(frozen=True)
class Recurring:
    name: str
    func: str
    minutes: int | None = None
    cron: str | None = None

    def next_after(self, moment: datetime) -> datetime:
        """When the schedule fires next after ``moment`` (cron in the console's time zone, as
        django-q reads it)."""
        if self.minutes is not None:
            return moment + timedelta(minutes=self.minutes)
        fire: datetime = croniter(self.cron, timezone.localtime(moment)).get_next(datetime)
        return fire

    def interval_after(self, moment: datetime) -> timedelta:
        """The time between the fire due at ``moment`` and the one after it (for a cron
        schedule, between two consecutive cron fires)."""
        if self.minutes is not None:
            return timedelta(minutes=self.minutes)
        return self.next_after(moment) - moment

    def overdue_by(self, due: datetime, now: datetime) -> timedelta | None:
        """How late a run due at ``due`` is when that is more than two of the schedule's
        intervals, else None. django-q's scheduler looks every 30 s, so a minute schedule is
        routinely up to 30 s late; two intervals of slack keep that from raising the alarm."""
        late = now - due
        return late if late > 2 * self.interval_after(due) else None


_registry: dict[str, Recurring] = {}


def register(name: str, func: str, *, minutes: int | None = None, cron: str | None = None) -> None:
    if (minutes is None) == (cron is None):
        raise ValueError(f"schedule {name}: give exactly one of minutes or cron")
    if cron is not None and not croniter.is_valid(cron):
        raise ValueError(f"schedule {name}: {cron!r} is not a cron expression")
    _registry[name] = Recurring(name=name, func=func, minutes=minutes, cron=cron)


def registered() -> list[Recurring]:
    return sorted(_registry.values(), key=lambda r: r.name)


def get(name: str) -> Recurring | None:
    return _registry.get(name)


def sync(using: str = DEFAULT_DB_ALIAS, now: datetime | None = None) -> int:
    """Create or update every registered schedule; returns how many schedule rows changed."""
    from django_q.models import Schedule

    from console import clock
    from console.models import ScheduleRun

    now = now or clock.now()
    changed = 0
    with transaction.atomic(using=using):
        for recurring in registered():
            wanted = {
                "func": recurring.func,
                "schedule_type": Schedule.CRON if recurring.cron else Schedule.MINUTES,
                "minutes": recurring.minutes,
                "cron": recurring.cron,
                "repeats": -1,
            }
            row = Schedule.objects.using(using).filter(name=recurring.name).first()
            if row is None:
                # next_run defaults to now: a new schedule fires at the scheduler's next pass.
                Schedule.objects.using(using).create(name=recurring.name, **wanted)
                changed += 1
            elif any(getattr(row, field) != value for field, value in wanted.items()):
                for field, value in wanted.items():
                    setattr(row, field, value)
                row.save(using=using, update_fields=list(wanted))
                changed += 1
            ScheduleRun.objects.using(using).get_or_create(
                name=recurring.name, defaults={"registered_at": now}
            )
    return changed


def record_run(name: str, now: datetime) -> None:
    """Note that a worker started the task of schedule ``name`` at ``now``."""
    from console.models import ScheduleRun

    ScheduleRun.objects.update_or_create(
        name=name,
        defaults={"last_run_at": now},
        create_defaults={"registered_at": now, "last_run_at": now},
    )


def _tables_exist(using: str) -> bool:
    from django_q.models import Schedule

    from console.models import ScheduleRun

    tables = set(connections[using].introspection.table_names())
    return {Schedule._meta.db_table, ScheduleRun._meta.db_table} <= tables


def sync_after_migrate(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """``post_migrate`` receiver. Sent after every ``migrate`` and ``flush``, also after one that
    unapplied django-q's or the console's migrations (``migrate django_q zero``): then the
    tables are gone and there is nothing to write."""
    if _tables_exist(using):
        sync(using=using)
