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
from webhooks.models import PROCESSING_LEASE, DrainRequest, InboundEvent

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


def test_a_drain_over_its_budget_stops_and_asks_for_another(client, enqueued):
    from webhooks import registry

    for n in range(actions.DRAIN_BATCH * 3):
        receive(client, shapes.config_item_event(event_id=f"burst-{n}"))
    enqueued.clear()
    elapsed = [0.0]

    def one_second_each(event):
        elapsed[0] += 1.0
        return "done"

    with registry.override(registry.CONFIG_ITEM_CHANGE, one_second_each):
        outcomes = actions.do_drain_inbox(budget=2.5, monotonic=lambda: elapsed[0])

    assert outcomes == {"processed": 3}  # the budget is checked before every event: 0, 1, 2 s
    assert InboundEvent.objects.filter(status="received", claim="").count() == (
        actions.DRAIN_BATCH * 3 - 3
    )  # what it claimed and did not reach is given back
    assert InboundEvent.objects.filter(status="processed").count() == 3
    assert ("webhooks.tasks.drain",) in enqueued


def test_events_a_dead_worker_held_are_taken_again_after_the_lease(client, enqueued, handled):
    receive(client, shapes.config_item_event(event_id="held"))
    event = InboundEvent.objects.get()
    now = clock.now()
    InboundEvent.objects.filter(pk=event.pk).update(
        status="processing", claimed_at=now, claim="dead-worker"
    )
    assert actions.claim_batch(now + PROCESSING_LEASE) == []  # still leased

    later = now + PROCESSING_LEASE + timedelta(seconds=1)
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
        if len(calls) == 1:  # the first event outlasts the lease; meanwhile another worker looks
            now[0] = start + PROCESSING_LEASE + timedelta(seconds=1)
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


@pytest.fixture
def queues(monkeypatch):
    """The tasks handed to the worker, by queue: django-q's cluster name, the main one when the
    caller names none."""
    from django.conf import settings

    by_queue: dict[str, list[tuple]] = {}

    def record(func, *args, cluster=None, **options):
        by_queue.setdefault(cluster or settings.Q_CLUSTER["name"], []).append((func, *args))

    monkeypatch.setattr(actions, "async_task", record)
    return by_queue


def test_an_alarm_s_task_goes_to_the_alarm_queue_and_a_burst_s_drain_to_the_main_one(
    client, queues, settings
):
    for n in range(5):
        receive(client, shapes.config_item_event(event_id=f"burst-{n}"))
    receive(client, shapes.alarm_event())
    alarm = InboundEvent.objects.get(kind="alarm_state_change")

    assert queues == {
        settings.Q_CLUSTER["name"]: [("webhooks.tasks.drain",)],
        settings.Q_ALARM_CLUSTER: [("webhooks.tasks.process_event", alarm.pk)],
    }
    # The alarm cluster's settings: its own workers, and no scheduler of its own.
    alarm_cluster = settings.Q_CLUSTER["ALT_CLUSTERS"][settings.Q_ALARM_CLUSTER]
    assert alarm_cluster["scheduler"] is False and alarm_cluster["workers"] >= 1


def test_a_re_processed_alarm_goes_to_the_alarm_queue_again(client, queues, settings):
    receive(client, shapes.alarm_event())
    alarm = InboundEvent.objects.get()
    InboundEvent.objects.filter(pk=alarm.pk).update(status="failed", attempts=5)
    queues.clear()

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert actions.do_reprocess_event(alarm, actor="oscar")

    assert queues == {settings.Q_ALARM_CLUSTER: [("webhooks.tasks.process_event", alarm.pk)]}


@pytest.mark.django_db(transaction=True)
def test_a_drain_commits_once_per_batch_not_once_per_event(client, enqueued):
    """A commit waits for the disk (1-3 ms on PostgreSQL): two per event capped a drain at a few
    hundred events a second whatever the handlers cost."""
    from django.db import connection

    events = actions.DRAIN_BATCH * 3
    for n in range(events):
        receive(client, shapes.config_item_event(event_id=f"burst-{n}"))
    commits = []
    real_commit = connection.commit

    def counting_commit():
        commits.append("commit")
        real_commit()

    def autocommitted_writes(execute, sql, params, many, context):
        write = sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        if write and not connection.in_atomic_block:
            commits.append(sql)  # a write outside a transaction commits by itself
        return execute(sql, params, many, context)

    with connection.execute_wrapper(autocommitted_writes):
        connection.commit = counting_commit
        try:
            outcomes = actions.do_drain_inbox(budget=60)
        finally:
            del connection.commit

    assert outcomes == {"processed": events}
    assert InboundEvent.objects.filter(status="processed").count() == events
    # Per batch: its claim and its work (4 batches: the last finds nothing), and the request row.
    assert len(commits) <= 2 * 4 + 1, commits


def test_stalled_work_is_handed_on_without_waiting_for_the_minute_pass(client, queues, settings):
    """What a dead worker held: an event whose lease ended, an alarm whose task never took it,
    a drain asked for that never started. Fresh work is left to its own task."""
    now = clock.now()
    receive(client, shapes.config_item_event(event_id="held-by-the-dead"))
    receive(client, shapes.alarm_event(event_id="alarm-whose-task-died"))
    receive(client, shapes.alarm_event(event_id="alarm-just-in", alarm="other"))
    held = InboundEvent.objects.get(dedupe_key="held-by-the-dead")
    stalled_alarm = InboundEvent.objects.get(dedupe_key="alarm-whose-task-died")
    InboundEvent.objects.filter(pk=held.pk).update(
        status="processing", claimed_at=now, claim="dead-worker"
    )
    InboundEvent.objects.filter(pk=stalled_alarm.pk).update(
        received_at=now - actions.STALLED_AFTER - timedelta(seconds=1)
    )
    DrainRequest.objects.update(requested_at=now)  # the drain the event asked for is running
    queues.clear()

    # Within the lease, nothing but the alarm nobody took.
    assert actions.do_resume_stalled(now) == {"alarms": 1, "drains": 0}
    assert queues == {
        settings.Q_ALARM_CLUSTER: [("webhooks.tasks.process_event", stalled_alarm.pk)]
    }

    # The lease is over: a drain takes the event over (oldest first).
    queues.clear()
    later = now + PROCESSING_LEASE + timedelta(seconds=1)
    InboundEvent.objects.filter(kind="alarm_state_change").update(status="processed")
    DrainRequest.objects.update(requested_at=later)
    assert actions.do_resume_stalled(later) == {"alarms": 0, "drains": 1}
    assert queues == {settings.Q_CLUSTER["name"]: [("webhooks.tasks.drain",)]}
    assert actions.claim_batch(later)[0] == held.pk


def test_a_drain_asked_for_and_never_started_is_asked_for_again(queues, settings):
    now = clock.now()
    assert actions.request_drain(now) is True
    queues.clear()

    assert actions.do_resume_stalled(now + actions.STALLED_AFTER / 2) == {
        "alarms": 0,
        "drains": 0,
    }
    assert actions.do_resume_stalled(now + actions.STALLED_AFTER * 2) == {
        "alarms": 0,
        "drains": 1,
    }
    assert queues == {settings.Q_CLUSTER["name"]: [("webhooks.tasks.drain",)]}
