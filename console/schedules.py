"""Recurring worker schedules, declared by each app and written idempotently.

An app declares its schedules in ``AppConfig.ready``::

    schedules.register("cleanup.run-due", "cleanup.tasks.run_due_checks", minutes=1)

After every ``migrate`` (and with ``manage.py sync_schedules``) the django-q ``Schedule`` rows are
created or updated by name, so deploying twice never duplicates a schedule and a changed interval
takes effect on the next deploy.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction


@dataclass(frozen=True)
class Recurring:
    name: str
    func: str
    minutes: int | None = None
    cron: str | None = None


_registry: dict[str, Recurring] = {}


def register(name: str, func: str, *, minutes: int | None = None, cron: str | None = None) -> None:
    if (minutes is None) == (cron is None):
        raise ValueError(f"schedule {name}: give exactly one of minutes or cron")
    _registry[name] = Recurring(name=name, func=func, minutes=minutes, cron=cron)


def registered() -> list[Recurring]:
    return sorted(_registry.values(), key=lambda r: r.name)


def sync() -> int:
    """Create or update every registered schedule; returns how many rows changed."""
    from django_q.models import Schedule

    changed = 0
    with transaction.atomic():
        for recurring in registered():
            wanted = {
                "func": recurring.func,
                "schedule_type": Schedule.CRON if recurring.cron else Schedule.MINUTES,
                "minutes": recurring.minutes,
                "cron": recurring.cron,
                "repeats": -1,
            }
            row = Schedule.objects.filter(name=recurring.name).first()
            if row is None:
                Schedule.objects.create(name=recurring.name, **wanted)
                changed += 1
            elif any(getattr(row, field) != value for field, value in wanted.items()):
                for field, value in wanted.items():
                    setattr(row, field, value)
                row.save(update_fields=list(wanted))
                changed += 1
    return changed


def sync_after_migrate(**kwargs) -> None:
    sync()
