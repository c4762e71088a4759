"""After the answer: each event handled once, retried with back-off, never lost."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django_q.models import OrmQ

import audit
from audit.models import AuditEvent
from console import clock
from tests.webhooks import shapes
from webhooks import actions, registry, tasks
from webhooks.models import MAX_ATTEMPTS, PROCESSING_LEASE, InboundEvent

pytestmark = pytest.mark.django_db


def test_with_the_worker_stopped_events_stay_received_then_the_command_handles_each_once(
    post_event, worker_stopped, handled, capsys
):
    events = [shapes.alarm_event(), shapes.deregistration_event(), shapes.alarm_event("OK")]
    for event in events:
        assert post_event(event).status_code == 202

    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"received"}
    assert handled.calls == []
    assert OrmQ.objects.count() == 3  # queued for a worker that is not running

    call_command("webhooks", "process")
    call_command("webhooks", "process")  # a second run finds nothing left

    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert sorted(handled.event_ids) == sorted(InboundEvent.objects.values_list("id", flat=True))
    output = capsys.readouterr().out.splitlines()
    assert output[0].startswith("3 pending events: 3 processed")
    assert output[1].startswith("0 pending events")


def test_the_queued_task_of_an_event_already_processed_does_nothing(
    post_event, worker_stopped, handled
):
    """The worker comes back after the command handled the event: no second handling."""
    post_event(shapes.alarm_event())
    event = InboundEvent.objects.get()
    call_command("webhooks", "process")

    assert tasks.process_event(event.pk) is None
    assert handled.event_ids == [event.pk]


def test_the_recurring_schedule_picks_up_events_accepted_while_the_worker_was_down(
    post_event, worker_stopped, handled
):
    post_event(shapes.alarm_event())
    post_event(shapes.config_item_event())
    from django_q.conf import Conf

    Conf.SYNC = True  # the worker is back: what the minute pass enqueues runs

    outcome = tasks.process_pending()

    assert outcome == "alarms 1; drain requested"
    assert len(handled.calls) == 2
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert tasks.process_pending() == "nothing due"


def test_the_process_command_reports_json(post_event, worker_stopped, capsys):
    post_event(shapes.alarm_event())

    call_command("webhooks", "process", "--json")

    report = json.loads(capsys.readouterr().out)
    assert report["outcomes"]["processed"] == 1
    assert report["pending"] == 0


def flaky(failures: int):
    calls = []

    def handler(event):
        calls.append(event.pk)
        if len(calls) <= failures:
            raise RuntimeError(f"AWS said no (call {len(calls)})")
        return "breaker opened"

    handler.calls = calls
    return handler


def test_a_handler_that_raises_twice_then_succeeds_ends_processed_after_three_attempts(post_event):
    handler = flaky(failures=2)
    with registry.override(registry.ALARM_STATE_CHANGE, handler):
        post_event(shapes.alarm_event())
        event = InboundEvent.objects.get()
        event.refresh_from_db()
        assert (event.status, event.attempts) == ("received", 1)
        first_retry = event.next_attempt_at

        # Not due yet: the schedule leaves it alone.
        assert tasks.process_pending() == "nothing due"
        assert actions.do_process_pending(now=first_retry - timedelta(seconds=1)) == {}

        actions.do_process_pending(now=first_retry)
        event.refresh_from_db()
        assert (event.status, event.attempts) == ("received", 2)
        assert event.next_attempt_at - first_retry == timedelta(seconds=60)  # doubled

        actions.do_process_pending(now=event.next_attempt_at)

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 3)
    assert event.note == "breaker opened"
    assert event.next_attempt_at is None
    assert len(handler.calls) == 3
    assert [step["what"] for step in event.history] == ["received", "error", "error", "processed"]


def test_a_handler_that_always_raises_ends_failed_with_the_error_on_the_inbox_page(
    post_event, operator_client
):
    def broken(event):
        raise ValueError("mapping 1234 not found")

    with registry.override(registry.ALARM_STATE_CHANGE, broken):
        post_event(shapes.alarm_event())
        event = InboundEvent.objects.get()
        now = clock.now()
        for _ in range(MAX_ATTEMPTS + 2):
            now += timedelta(hours=2)
            actions.do_process_pending(now=now)

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("failed", MAX_ATTEMPTS)
    assert event.error == "ValueError: mapping 1234 not found"
    page = operator_client.get("/inbox/").content.decode()
    assert "mapping 1234 not found" in page
    detail = operator_client.get(f"/inbox/{event.pk}/").content.decode()
    assert "ValueError: mapping 1234 not found" in detail


def test_back_off_grows_exponentially_up_to_a_cap():
    event = InboundEvent()

    delays = [event.backoff_after(attempts).total_seconds() for attempts in range(1, 10)]

    assert delays[:4] == [30, 60, 120, 240]
    assert max(delays) == 3600


def test_a_kind_without_a_handler_is_ignored_with_the_reason(post_event):
    with registry.override(registry.OTHER, None):
        post_event(
            {"id": "s3-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}}
        )

    event = InboundEvent.objects.get()
    assert event.status == "ignored"
    assert event.note == "no handler for kind other"


def test_a_handler_raising_ignored_marks_the_event_ignored_with_its_message(post_event):
    def not_ours(event):
        raise registry.Ignored("alarm orders-errors trips no breaker")

    with registry.override(registry.ALARM_STATE_CHANGE, not_ours):
        post_event(shapes.alarm_event())

    event = InboundEvent.objects.get()
    assert (event.status, event.note, event.attempts) == (
        "ignored",
        "alarm orders-errors trips no breaker",
        1,
    )


def test_a_failing_handler_leaves_no_partial_writes(post_event):
    def half_done(event):
        audit.record(event.actor, "breaker.opened", target_id="orders")
        raise RuntimeError("UpdateEventSourceMapping failed")

    with registry.override(registry.ALARM_STATE_CHANGE, half_done):
        post_event(shapes.alarm_event())

    assert not AuditEvent.objects.filter(action="breaker.opened").exists()
    assert InboundEvent.objects.get().status == "received"


def test_two_workers_never_process_the_same_event(post_event, worker_stopped):
    """The claim is a conditional update: the second claimant gets nothing."""
    seen = []

    def reentrant(event):
        seen.append(event.pk)
        # A second worker picks the same event while the first one is still handling it.
        assert actions.do_process_event(event.pk) is None
        return "done"

    with registry.override(registry.ALARM_STATE_CHANGE, reentrant):
        post_event(shapes.alarm_event())
        event = InboundEvent.objects.get()
        assert actions.do_process_event(event.pk) == "processed"
        assert actions.do_process_event(event.pk) is None

    assert seen == [event.pk]


def test_an_event_abandoned_by_a_dead_worker_is_taken_again_after_the_lease(
    post_event, worker_stopped, handled
):
    post_event(shapes.alarm_event())
    event = InboundEvent.objects.get()
    then = clock.now()
    InboundEvent.objects.filter(pk=event.pk).update(status="processing", claimed_at=then)

    assert actions.do_process_pending(now=then + PROCESSING_LEASE) == {}
    later = then + PROCESSING_LEASE + timedelta(seconds=1)
    assert actions.do_process_pending(now=later) == {"processed": 1}
    assert handled.event_ids == [event.pk]


def test_processing_is_scheduled_every_minute():
    from console import schedules

    recurring = {item.name: item for item in schedules.registered()}["webhooks.process-pending"]
    assert (recurring.func, recurring.minutes) == ("webhooks.tasks.process_pending", 1)


def test_the_processing_task_times_out_before_the_cluster_retries(settings):
    assert settings.Q_CLUSTER["retry"] > actions.TASK_TIMEOUT
