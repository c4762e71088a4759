"""The recurring schedules exist in every deployment: ``migrate`` writes them on a fresh database
and on every later deploy, and the worker writes them again when it starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from console import schedules
from console.models import ScheduleRun
from tests.processes import Console, own_database, wait_for

SCHEDULE_NAMES = "SELECT name FROM django_q_schedule ORDER BY name"
HEARTBEATS = "SELECT host, pid, started_at, last_beat FROM console_workerheartbeat"


def registered_names() -> list[str]:
    return sorted(recurring.name for recurring in schedules.registered())


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def names(console: Console) -> list[str]:
    return [name for (name,) in console.sql(SCHEDULE_NAMES)]


def test_it_writes_every_schedule_once_when_a_fresh_database_is_migrated(tmp_path):
    with own_database(tmp_path, "fresh_migrate") as database_url:
        console = Console(tmp_path, database_url)

        console.manage("migrate", "--no-input")
        assert names(console) == registered_names()

        # django-q's tables dropped and created again, then the next release's migrate.
        console.manage("migrate", "django_q", "zero", "--no-input")
        console.manage("migrate", "--no-input")
        console.manage("migrate", "--no-input")
        assert names(console) == registered_names()  # every one, and each once


def test_it_writes_the_schedules_again_and_beats_when_the_worker_starts(tmp_path, broker, request):
    """On either broker (``broker``: the ORM, or Redis started by the tests)."""
    with own_database(tmp_path, "worker_start") as database_url:
        console = Console(tmp_path, database_url, Q_WORKERS="1", **broker)
        console.manage("migrate", "--no-input")
        console.sql("DELETE FROM django_q_schedule")  # as after restoring an older backup
        assert names(console) == []

        worker = console.start_worker()
        try:
            wait_for(
                "the worker writes the schedules and both its clusters beat",
                lambda: names(console) == registered_names() and len(console.sql(HEARTBEATS)) == 2,
                timeout=60,
                log=console.logs,
            )
            heartbeats = console.sql(HEARTBEATS)
            # A row per cluster, keyed by the process that guards its workers: the main
            # cluster's is the qcluster's child; the alarm cluster's, its grandchild (the
            # qcluster runs the alarm cluster as a child process of its own).
            parents = {}
            for host, pid, started_at, last_beat in heartbeats:
                assert host == socket.gethostname()
                assert started_at <= last_beat
                parents[pid] = parent_of(pid)
            assert sorted(parent_of(parent) == worker.pid for parent in parents.values()) == [
                False,
                True,
            ], parents
            assert worker.pid in parents.values(), parents
            if broker:  # the cluster's statistics live in the broker: this Redis, not another
                redis = request.getfixturevalue("redis").client()
                assert redis.keys("django_q:console:cluster:*"), "no cluster stat in Redis"
        finally:
            returncode = console.stop("worker")
        assert returncode == 0, console.logs("worker")
        assert names(console) == registered_names()


@pytest.mark.django_db(transaction=True)
def test_it_writes_the_schedules_again_after_a_flush():
    Schedule.objects.all().delete()
    ScheduleRun.objects.all().delete()

    call_command("flush", interactive=False, verbosity=0)

    assert sorted(Schedule.objects.values_list("name", flat=True)) == registered_names()
    assert sorted(ScheduleRun.objects.values_list("name", flat=True)) == registered_names()


@pytest.mark.django_db
def test_it_records_when_the_scheduler_starts_a_schedules_task(monkeypatch):
    """django-q's scheduler names each task after its schedule; the worker notes the run."""
    from datetime import UTC, datetime, timedelta

    from django_q.scheduler import scheduler

    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    monkeypatch.setattr("console.clock.now", lambda: now)
    schedules.register("test.every-five", "console.clock.now", minutes=5)
    try:
        schedules.sync()
        # Only the test's schedule is due (the suite runs django-q in sync mode: the task runs
        # inside scheduler()).
        Schedule.objects.exclude(name="test.every-five").update(
            next_run=datetime(2100, 1, 1, tzinfo=UTC)
        )
        Schedule.objects.filter(name="test.every-five").update(next_run=now - timedelta(hours=1))

        scheduler()

        assert ScheduleRun.objects.get(name="test.every-five").last_run_at == now
        assert not ScheduleRun.objects.exclude(name="test.every-five").exclude(last_run_at=None)
    finally:
        schedules._registry.pop("test.every-five")
