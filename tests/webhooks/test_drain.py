"""A burst of events is drained in batches by few tasks, and alarms never wait behind it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import TestCase

from console import clock
from tests.webhooks import shapes
from tests.webhooks.conftest import KEYS
from webhooks import actions
from webhooks.models import DrainRequest, InboundEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    """The tasks the doors hand to the worker, recorded instead of run."""
    tasks: list[tuple] = []
    monkeypatch.setattr(
        actions, "async_task", lambda func, *args, **options: tasks.append((func, *args))
    )
    return tasks


def receive(client, event) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            "/webhooks/eventbridge/",
            json.dumps(event),
            content_type="application/json",
            headers={"X-Api-Key": KEYS[0]},
        )
    assert response.status_code == 202


def test_a_burst_of_events_asks_for_one_drain_and_an_alarm_gets_its_own_task(client, enqueued):
    for n in range(30):
        receive(client, shapes.config_item_event(event_id=f"burst-{n}"))
    receive(client, shapes.alarm_event())

    drains = [task for task in enqueued if task[0] == "webhooks.tasks.drain"]
    alarm_tasks = [task for task in enqueued if task[0] == "webhooks.tasks.process_event"]
    assert len(drains) == 1
    assert alarm_tasks == [
        ("webhooks.tasks.process_event", InboundEvent.objects.get(kind="alarm_state_change").pk)
    ]


def test_a_drain_processes_every_due_event_once_in_batches(client, enqueued, handled):
    for n in range(actions.DRAIN_BATCH * 2 + 7):
        receive(client, shapes.config_item_event(event_id=f"burst-{n}"))

    outcomes = actions.do_drain_inbox()

    assert outcomes == {"processed": actions.DRAIN_BATCH * 2 + 7}
    assert sorted(handled.event_ids) == sorted(InboundEvent.objects.values_list("pk", flat=True))
    assert len(set(handled.event_ids)) == len(handled.event_ids)
    assert not InboundEvent.objects.exclude(status="processed").exists()
    assert not InboundEvent.objects.exclude(claim="").exists()
    assert (
        DrainRequest.objects.get().requested_at is None
        or len([t for t in enqueued if t[0] == "webhooks.tasks.drain"]) >= 2
    )  # a full first batch asked for a second drain to share the burst


def test_a_drain_over_its_budget_stops_and_asks_for_another(client, enqueued, handled):
    for n in range(actions.DRAIN_BATCH * 3):
        receive(client, shapes.config_item_event(event_id=f"burst-{n}"))
    enqueued.clear()
    ticks = iter(range(0, 1000))  # every reading of the clock is 1 s later

    outcomes = actions.do_drain_inbox(budget=2.5, monotonic=lambda: next(ticks))

    assert outcomes == {"processed": 2}  # the budget is checked before every event
    assert InboundEvent.objects.filter(status="received", claim="").count() == (
        actions.DRAIN_BATCH * 3 - 2
    )  # what it claimed and did not reach is given back
    assert ("webhooks.tasks.drain",) in enqueued


def test_events_a_dead_worker_held_are_taken_again_after_the_lease(client, enqueued, handled):
    receive(client, shapes.config_item_event(event_id="held"))
    event = InboundEvent.objects.get()
    now = clock.now()
    InboundEvent.objects.filter(pk=event.pk).update(
        status="processing", claimed_at=now, claim="dead-worker"
    )
    assert actions.claim_batch(now + timedelta(seconds=30)) == []  # still leased

    later = now + timedelta(seconds=61)
    assert actions.claim_batch(later) == [event.pk]


def test_a_lost_drain_request_is_asked_again_once_stale(enqueued):
    now = clock.now()
    assert actions.request_drain(now) is True
    assert actions.request_drain(now + timedelta(seconds=5)) is False  # already asked
    assert actions.request_drain(now + actions.DRAIN_REQUEST_STALE + timedelta(seconds=1)) is True
    assert [task[0] for task in enqueued] == ["webhooks.tasks.drain"] * 2


def test_a_slow_batch_never_has_an_event_handled_twice(client, enqueued, monkeypatch):
    """Found by the two-worker test: a batch slower than the lease let the minute pass re-take
    the events the drain had not reached yet, and both handled them."""
    from webhooks import registry

    for n in range(3):
        receive(client, shapes.config_item_event(event_id=f"slow-{n}"))
    start = clock.now()
    now = [start]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    calls: list[int] = []

    def slow_handler(event):
        calls.append(event.pk)
        if len(calls) == 1:  # the first event takes 61 s; meanwhile another worker looks
            now[0] = start + timedelta(seconds=61)
            others = list(InboundEvent.objects.exclude(pk=event.pk).order_by("pk"))
            actions.do_process_event(others[0].pk, now[0])  # one it finishes
            assert actions._claim(others[1].pk, now[0], wait_for_retry=True)  # one it is still on
        return "done"

    with registry.override(registry.CONFIG_ITEM_CHANGE, slow_handler):
        actions.do_drain_inbox()

    pks = list(InboundEvent.objects.order_by("pk").values_list("pk", flat=True))
    assert calls == pks[:2]  # the drain's first, and the one the other worker finished
    assert InboundEvent.objects.get(pk=pks[2]).status == "processing"  # left to its new owner


def test_a_drain_leaves_a_fresh_alarm_to_its_own_task(client, enqueued):
    for n in range(5):
        receive(client, shapes.config_item_event(event_id=f"before-{n}"))
    receive(client, shapes.alarm_event())
    alarm = InboundEvent.objects.get(kind="alarm_state_change")

    claimed = actions.claim_batch(clock.now())
    later = actions.claim_batch(clock.now() + actions.ALARM_LANE_GRACE + timedelta(seconds=1))

    assert alarm.pk not in claimed and len(claimed) == 5
    assert alarm.pk in later  # its task was lost: a drain takes it after the grace
