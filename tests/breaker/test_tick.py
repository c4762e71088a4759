"""The minute tick keeps probing a recovering breaker every 10 s (django-q schedules by minutes)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from breaker import tasks
from breaker.models import Breaker
from console import clock
from tests.breaker.conftest import NOW, half_open


class FakeClock:
    def __init__(self, start):
        self.at = start
        self.slept: list[float] = []

    def now(self):
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock(NOW)
    monkeypatch.setattr("console.clock.now", clock.now)
    return clock


def test_a_half_open_breaker_is_probed_every_interval_within_one_tick(
    breaker, function, fake_clock
):
    Breaker.objects.filter(pk=breaker.pk).update(successes_to_close=5, probe_interval_seconds=10)
    half_open(breaker, function)
    for number in range(6):
        function.send(f"order-{number}")

    tasks.tick(sleep=fake_clock.sleep)

    breaker.refresh_from_db()
    probed_at = sorted(breaker.probes.values_list("at", flat=True))
    assert [(at - NOW).total_seconds() for at in probed_at] == [0, 10, 20, 30, 40]
    assert breaker.state == Breaker.State.CLOSED
    assert function.queued() == 1
    assert fake_clock.slept == [10, 10, 10, 10]  # and then nothing left to wait for


def test_the_tick_returns_at_once_when_nothing_is_recovering(breaker, function, fake_clock):
    tasks.tick(sleep=fake_clock.sleep)

    assert fake_clock.slept == []
    assert breaker.probes.count() == 0


def test_the_tick_never_runs_past_its_minute(breaker, function, fake_clock):
    Breaker.objects.filter(pk=breaker.pk).update(successes_to_close=50, probe_interval_seconds=10)
    half_open(breaker, function)
    for number in range(20):
        function.send(f"order-{number}")

    tasks.tick(sleep=fake_clock.sleep)

    assert sum(fake_clock.slept) <= tasks.PUMP_SPAN.total_seconds()
    assert breaker.probes.count() == 5


def test_a_probe_task_outlasts_the_slowest_function_and_a_second_delivery_probes_nothing(
    breaker, monkeypatch, settings
):
    """The probe task's own timeout covers a 15-minute function; the broker's retry is shorter
    (so a crashed worker's other tasks come back quickly), and hands a long probe to a second
    worker while it runs: that one finds the probe lease held and does nothing."""
    from breaker.actions import probes

    Breaker.objects.filter(pk=breaker.pk).update(function_timeout_seconds=900)  # Lambda's maximum
    enqueued = {}
    monkeypatch.setattr(probes, "async_task", lambda *args, **options: enqueued.update(options))

    probes.enqueue_probe(breaker.pk)

    breaker.refresh_from_db()
    assert enqueued["timeout"] >= breaker.probe_lease.total_seconds() > 900
    assert settings.Q_CLUSTER["retry"] < enqueued["timeout"]
    Breaker.objects.filter(pk=breaker.pk).update(state="half_open")
    now = clock.now()
    assert probes.claim_probe(breaker, now, "first-worker") is True
    later = now + timedelta(
        seconds=settings.Q_CLUSTER["retry"] + 1
    )  # the broker hands it out again
    assert probes.claim_probe(breaker, later, "second-worker") is False
