"""Seeing that the worker runs: ``/healthz/worker``, the dashboard's banner and ``/metrics``.

The time is injected: the worker beat and the schedules ran at moments set relative to ``NOW``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django_q.models import Schedule
from prometheus_client.parser import text_string_to_metric_families

from console import schedules
from console.models import ScheduleRun, WorkerHeartbeat

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
TOKEN = "metrics-token-0123456789abcdef"
SILENT = "checks are not decided and breakers do not close"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr("console.clock.now", lambda: NOW)


def beat(ago: timedelta, host: str = "worker-1", pid: int = 41) -> None:
    WorkerHeartbeat.objects.update_or_create(
        host=host,
        pid=pid,
        defaults={"started_at": NOW - timedelta(hours=5), "last_beat": NOW - ago},
    )


def ran(name: str, at: datetime | None) -> None:
    ScheduleRun.objects.filter(name=name).update(last_run_at=at)


@pytest.fixture
def healthy(db):
    """A worker that beat 10 s ago, and every schedule run on time."""
    assert sorted(Schedule.objects.values_list("name", flat=True)) == sorted(
        recurring.name for recurring in schedules.registered()
    ), "migrate wrote every schedule into the test database"
    beat(timedelta(seconds=10))
    for recurring in schedules.registered():
        last = NOW - timedelta(seconds=20)
        if recurring.cron:  # the daily sweep ran at its last cron time
            last = datetime(2026, 11, 27, 3, 17, 4, tzinfo=UTC)
        ran(recurring.name, last)


def status(client: Client) -> tuple[int, dict]:
    response = client.get("/healthz/worker")
    return response.status_code, response.json()


# --- /healthz/worker ----------------------------------------------------------------------------


def test_it_answers_ok_without_sign_in_when_a_worker_beats_and_every_schedule_runs(healthy):
    response = Client().get("/healthz/worker")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "worker": "ok", "schedules": "ok"}
    assert b"worker-1" not in response.content  # status words only
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_answers_503_when_no_worker_has_beaten_for_two_minutes(healthy):
    beat(timedelta(minutes=2))
    assert status(Client())[0] == 200
    beat(timedelta(minutes=2, seconds=1))
    assert status(Client()) == (503, {"status": "error", "worker": "silent", "schedules": "ok"})


def test_it_answers_503_when_no_worker_ever_beat(healthy):
    WorkerHeartbeat.objects.all().delete()
    assert status(Client()) == (503, {"status": "error", "worker": "silent", "schedules": "ok"})


def test_one_beating_cluster_of_two_is_enough(healthy):
    beat(timedelta(hours=3), host="worker-2", pid=7)
    assert status(Client())[0] == 200


def test_it_answers_503_when_a_schedule_is_missing(healthy):
    Schedule.objects.filter(name="cleanup.run-due").delete()
    assert status(Client()) == (503, {"status": "error", "worker": "ok", "schedules": "missing"})


def test_a_schedule_that_will_not_repeat_counts_as_missing(healthy):
    Schedule.objects.filter(name="breaker.tick").update(repeats=0)
    assert status(Client())[1]["schedules"] == "missing"


def test_it_answers_503_when_a_minute_schedule_is_two_minutes_past_due(healthy):
    # Last run at 09:57:00: due at 09:58:00, so late by two intervals at 10:00:00 exactly.
    ran("breaker.tick", NOW - timedelta(minutes=3))
    assert status(Client())[0] == 200
    ran("breaker.tick", NOW - timedelta(minutes=3, seconds=1))
    assert status(Client()) == (503, {"status": "error", "worker": "ok", "schedules": "overdue"})


def test_a_daily_cron_schedule_is_overdue_two_days_after_its_missed_fire(healthy):
    # "17 3 * * *": run on the 25th at 03:17, due on the 26th at 03:17, two days later the 28th.
    ran("cleanup.sweep", datetime(2026, 11, 25, 3, 17, 2, tzinfo=UTC))
    assert status(Client())[0] == 200
    ran("cleanup.sweep", datetime(2026, 11, 24, 3, 17, 2, tzinfo=UTC))
    assert status(Client())[1]["schedules"] == "overdue"


def test_a_schedule_that_never_ran_is_judged_from_when_it_was_written(healthy):
    ScheduleRun.objects.filter(name="cleanup.sync").update(
        registered_at=NOW - timedelta(minutes=119), last_run_at=None
    )
    assert status(Client())[0] == 200  # hourly: due when written, overdue after two hours more
    ScheduleRun.objects.filter(name="cleanup.sync").update(
        registered_at=NOW - timedelta(minutes=121)
    )
    assert status(Client())[1]["schedules"] == "overdue"


def test_a_missing_schedule_is_reported_before_an_overdue_one(healthy):
    ran("breaker.tick", NOW - timedelta(hours=1))
    Schedule.objects.filter(name="cleanup.sync").delete()
    assert status(Client())[1]["schedules"] == "missing"


def test_it_answers_503_without_details_when_the_database_is_unreachable(healthy, monkeypatch):
    from django.db import OperationalError, connection

    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused by db.internal:5432")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", unreachable)
        response = Client().get("/healthz/worker")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}


# --- the dashboard's banner ---------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "operator", "admin", "outsider"])
def test_every_signed_in_role_sees_a_red_banner_when_the_worker_is_silent(
    healthy, request, persona
):
    beat(timedelta(minutes=7, seconds=40))
    client = request.getfixturevalue(f"{persona}_client")
    page = client.get("/").content.decode()
    assert (
        '<p class="message error" role="alert">No worker has run for 7m: '
        f"{SILENT}. Start one with <code>manage.py qcluster</code>.</p>"
    ) in page


def test_the_banner_says_when_no_worker_ever_ran(healthy, viewer_client):
    WorkerHeartbeat.objects.all().delete()
    assert f"No worker has run yet: {SILENT}." in viewer_client.get("/").content.decode()


def test_the_banner_names_a_missing_schedule(healthy, viewer_client):
    Schedule.objects.filter(name="cleanup.run-due").delete()
    page = viewer_client.get("/").content.decode()
    assert "The schedule cleanup.run-due is missing: nothing runs it." in page
    assert SILENT not in page


def test_the_banner_names_an_overdue_schedule_and_its_interval(healthy, viewer_client):
    ran("breaker.tick", NOW - timedelta(minutes=12, seconds=30))
    ran("cleanup.sweep", None)
    ScheduleRun.objects.filter(name="cleanup.sweep").update(registered_at=NOW - timedelta(days=4))
    page = viewer_client.get("/").content.decode()
    assert "The schedule breaker.tick is overdue: last run 12m ago, due every 1m." in page
    assert "The schedule cleanup.sweep is overdue: it has never run, due every 1d." in page


def test_there_is_no_banner_while_the_worker_is_healthy(healthy, viewer_client):
    assert 'role="alert"' not in viewer_client.get("/").content.decode()


# --- /metrics -----------------------------------------------------------------------------------


def scrape(client: Client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_show_the_heartbeat_age_and_each_schedules_last_run(healthy, settings):
    settings.METRICS_TOKEN = TOKEN
    beat(timedelta(seconds=42))
    ran("cleanup.run-due", None)
    ran("breaker.tick", NOW - timedelta(minutes=5))

    figures = scrape(Client())

    assert figures[("console_worker_heartbeat_age_seconds", ())] == 42
    tick = (("schedule", "breaker.tick"),)
    assert (
        figures[("console_schedule_last_run_timestamp_seconds", tick)]
        == (NOW - timedelta(minutes=5)).timestamp()
    )
    assert figures[("console_schedule_ok", tick)] == 0
    due = (("schedule", "cleanup.run-due"),)
    assert figures[("console_schedule_last_run_timestamp_seconds", due)] == 0
    sweep = (("schedule", "cleanup.sweep"),)
    assert figures[("console_schedule_ok", sweep)] == 1


def test_metrics_show_an_infinite_heartbeat_age_when_no_worker_ever_beat(db, settings):
    settings.METRICS_TOKEN = TOKEN
    assert math.isinf(scrape(Client())[("console_worker_heartbeat_age_seconds", ())])
