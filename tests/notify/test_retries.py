"""A failing channel is retried with back-off, and never blocks or fails the action behind it."""

from __future__ import annotations

from datetime import timedelta

from breaker import actions as breaker_actions
from breaker.models import Breaker
from notify import actions, receivers, watch
from notify.models import MAX_ATTEMPTS, RETRY_BASE, Delivery
from tests.breaker.conftest import NOW
from tests.notify.test_events import beat


def test_the_action_only_enqueues_and_sends_nothing_itself(
    breaker, function, channel, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    assert receiver.titles() == [] and not Delivery.objects.exists()
    notify_callbacks = [c for c in callbacks if "enqueue_audit_event" in c.__qualname__]
    assert len(notify_callbacks) == 1  # the worker's task, enqueued once committed


def test_a_failing_channel_is_retried_with_backoff_and_the_action_still_succeeds(
    breaker, function, channel, receiver, django_capture_on_commit_callbacks
):
    receiver.fail_next = 2
    with django_capture_on_commit_callbacks(execute=True):
        breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN  # the action did what it was asked
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.RETRYING, 1)
    assert "500" in delivery.last_error or "error" in delivery.last_error.lower()
    first_retry = delivery.next_attempt_at
    assert first_retry is not None

    # Not due yet: the task run again early does nothing.
    assert actions.do_send_delivery(delivery.pk, now=first_retry - timedelta(seconds=1)) is None
    # Due: tried again, fails again, waits twice as long.
    actions.do_send_delivery(delivery.pk, now=first_retry)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.RETRYING, 2)
    assert delivery.next_attempt_at - first_retry == 2 * RETRY_BASE  # 1 min, then 2 min

    # The watch pass sends it once the back-off is over.
    later = delivery.next_attempt_at + timedelta(seconds=1)
    beat(later)
    report = watch.do_watch(now=later)
    delivery.refresh_from_db()
    assert report.resent == 1
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert delivery.sent_at == later
    assert receiver.refused == 2
    assert receiver.titles() == ["Breaker orders tripped by hand"]


def test_an_unreachable_channel_fails_the_delivery_not_the_action(
    breaker, function, make_channel, django_capture_on_commit_callbacks
):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    make_channel(f"json://127.0.0.1:{port}/")

    with django_capture_on_commit_callbacks(execute=True):
        breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.RETRYING
    assert "connection error" in delivery.last_error.lower()


def test_an_error_in_the_notification_code_never_fails_the_action(
    breaker, function, channel, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("the queue is down")

    monkeypatch.setattr(receivers, "enqueue_audit_event", broken)

    with django_capture_on_commit_callbacks(execute=True):
        breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN


def test_a_delivery_gives_up_after_its_last_attempt(channel, receiver):
    receiver.fail_next = MAX_ATTEMPTS + 5
    delivery = actions.do_send_test(channel, actor="ada", now=NOW)
    at = NOW
    for _ in range(MAX_ATTEMPTS):
        actions.do_send_delivery(delivery.pk, now=at)
        delivery.refresh_from_db()
        at = delivery.next_attempt_at or at

    assert (delivery.status, delivery.attempts) == (Delivery.Status.GAVE_UP, MAX_ATTEMPTS)
    assert actions.do_send_delivery(delivery.pk, now=at + timedelta(days=1)) is None
    assert receiver.refused == MAX_ATTEMPTS


def test_a_send_whose_worker_died_is_picked_up_once_its_lease_is_over(channel, receiver):
    delivery = actions.do_send_test(channel, actor="ada", now=NOW)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.SENDING, lease_until=NOW + timedelta(minutes=2), attempts=1
    )

    assert actions.do_send_delivery(delivery.pk, now=NOW + timedelta(minutes=1)) is None
    actions.do_send_delivery(delivery.pk, now=NOW + timedelta(minutes=3))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)
    assert len(receiver.titles()) == 1


def test_a_disabled_channel_is_not_sent_to(channel, receiver):
    delivery = actions.do_send_test(channel, actor="ada", now=NOW)
    channel.enabled = False
    channel.save(update_fields=["enabled"])

    actions.do_send_delivery(delivery.pk, now=NOW)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (
        Delivery.Status.GAVE_UP,
        "the channel is disabled",
    )
    assert receiver.titles() == []
