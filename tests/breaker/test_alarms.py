"""Alarm notifications open and half-open breakers, exactly once, in order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from breaker import actions, handlers
from breaker.models import Breaker, BreakerTransition
from tests.breaker.conftest import NOW
from tests.breaker.events import eventbridge_alarm, inbound, sns_alarm
from webhooks import registry


def test_alarm_disables_the_mapping_and_records_the_alarms_reason(breaker, function):
    note = handlers.on_alarm_state_change(
        inbound(
            sns_alarm(function.alarm_arn, "ALARM", NOW, reason="Threshold Crossed: 7 errors"), "sns"
        )
    )

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    assert function.mapping_state() == "Disabled"
    assert breaker.mapping_state == "Disabled"
    transition = breaker.transitions.get()
    assert (transition.from_state, transition.to_state, transition.cause) == (
        "closed",
        "open",
        "alarm",
    )
    assert transition.reason == "Threshold Crossed: 7 errors"
    assert transition.actor == "webhook:sns"
    assert AuditEvent.objects.filter(
        action="breaker.opened", actor="webhook:sns", target_id=str(breaker.pk)
    ).exists()
    assert "opened" in note


def test_the_same_notification_again_changes_nothing(breaker, function):
    event = inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW))
    handlers.on_alarm_state_change(event)
    function.set_mapping(True)  # so a second disable would show

    note = handlers.on_alarm_state_change(event)

    assert "already applied" in note
    assert BreakerTransition.objects.count() == 1
    assert function.mapping_state() == "Enabled"


def test_an_older_notification_changes_nothing(breaker, function):
    handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW)))
    handlers.on_alarm_state_change(
        inbound(eventbridge_alarm(function.alarm_arn, "OK", NOW + timedelta(seconds=60)))
    )

    late = handlers.on_alarm_state_change(
        inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW + timedelta(seconds=30)))
    )

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.HALF_OPEN
    assert "stale" in late
    assert BreakerTransition.objects.count() == 2


def test_alarm_ok_alarm_within_a_second_ends_open_with_the_mapping_disabled(breaker, function):
    for offset, state in [(0, "ALARM"), (300, "OK"), (700, "ALARM")]:
        handlers.on_alarm_state_change(
            inbound(
                eventbridge_alarm(function.alarm_arn, state, NOW + timedelta(milliseconds=offset))
            )
        )

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    assert function.mapping_state() == "Disabled"
    assert list(breaker.transitions.order_by("at", "id").values_list("to_state", flat=True)) == [
        "open",
        "half_open",
        "open",
    ]


def test_the_same_changes_delivered_out_of_order_end_in_the_latest_state(breaker, function):
    for offset, state in [(700, "ALARM"), (0, "ALARM"), (300, "OK")]:
        handlers.on_alarm_state_change(
            inbound(
                eventbridge_alarm(function.alarm_arn, state, NOW + timedelta(milliseconds=offset))
            )
        )

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    assert function.mapping_state() == "Disabled"


def test_leaving_alarm_makes_an_open_breaker_half_open_due_for_a_probe_now(breaker, function):
    handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW)))
    later = NOW + timedelta(minutes=5)

    actions.do_apply_alarm_state(
        breaker,
        handlers.parse_alarm_change(eventbridge_alarm(function.alarm_arn, "OK", later)),
        actor="webhook:eventbridge",
        now=later,
    )

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.HALF_OPEN
    assert breaker.next_probe_at == later
    assert function.mapping_state() == "Disabled"  # half-open probes by hand, Lambda stays off


def test_leaving_alarm_enqueues_the_first_probe_once_committed(
    breaker, function, django_capture_on_commit_callbacks
):
    handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW)))
    function.send("order-1")
    later = NOW + timedelta(minutes=5)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "OK", later)))

    assert len(callbacks) == 1
    assert breaker.probes.count() == 1  # Q_CLUSTER sync: the enqueued probe ran


def test_a_tripped_breaker_stays_open_through_ok_until_reset(breaker, function):
    actions.do_trip(breaker, actor="oscar", reason="downstream maintenance", now=NOW)
    for offset, state in [(1, "ALARM"), (2, "OK"), (3, "OK")]:
        handlers.on_alarm_state_change(
            inbound(
                eventbridge_alarm(
                    function.alarm_arn, state, NOW + timedelta(seconds=offset * 60 + offset)
                )
            )
        )

    breaker.refresh_from_db()
    assert (breaker.state, breaker.mode) == ("open", "forced_open")
    assert function.mapping_state() == "Disabled"

    actions.do_reset(breaker, actor="oscar", now=NOW + timedelta(minutes=10))

    breaker.refresh_from_db()
    assert (breaker.state, breaker.mode) == ("closed", "auto")
    assert function.mapping_state() == "Enabled"
    assert AuditEvent.objects.filter(action="breaker.reset", actor="oscar").exists()


def test_an_unmanaged_breaker_ignores_alarms(breaker, function):
    actions.do_set_managed(breaker, managed=False, actor="oscar", now=NOW)

    handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW)))

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.CLOSED
    assert function.mapping_state() == "Enabled"


def test_a_breaker_listing_the_alarm_by_name_matches_in_its_account_and_region(function):
    by_name = actions.do_add_breaker(
        actor="fixture",
        name="orders-by-name",
        account=function.account,
        region="eu-west-1",
        function_name=function.function_name,
        alarms=[function.alarm_name],
        now=NOW,
    )

    handlers.on_alarm_state_change(inbound(sns_alarm(function.alarm_arn, "ALARM", NOW), "sns"))

    by_name.refresh_from_db()
    assert by_name.state == Breaker.State.OPEN


def test_an_alarm_no_breaker_watches_is_ignored(breaker, function):
    other = function.alarm_arn.replace("222222222222", "999999999999")
    with pytest.raises(registry.Ignored, match="no breaker watches"):
        handlers.on_alarm_state_change(inbound(eventbridge_alarm(other, "ALARM", NOW)))


def test_a_malformed_alarm_event_is_ignored_with_the_reason(breaker):
    with pytest.raises(registry.Ignored, match="malformed"):
        handlers.on_alarm_state_change(
            inbound({"detail-type": "CloudWatch Alarm State Change", "detail": {}})
        )


def test_the_handler_is_registered_for_alarm_state_changes():
    assert registry.handler_for(registry.ALARM_STATE_CHANGE) is handlers.on_alarm_state_change


def test_with_two_alarms_the_breaker_half_opens_only_when_neither_is_in_alarm(breaker, function):
    second = function.alarm_arn.replace("orders-worker-errors", "orders-worker-throttles")
    actions.do_update_settings(breaker, actor="ada", alarms=[function.alarm_arn, second])
    for offset, arn, state in [
        (0, function.alarm_arn, "ALARM"),
        (1, second, "ALARM"),
        (2, function.alarm_arn, "OK"),
    ]:
        handlers.on_alarm_state_change(
            inbound(eventbridge_alarm(arn, state, NOW + timedelta(seconds=offset)))
        )
    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN

    handlers.on_alarm_state_change(
        inbound(eventbridge_alarm(second, "OK", NOW + timedelta(seconds=3)))
    )

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.HALF_OPEN


def test_insufficient_data_counts_as_leaving_alarm(breaker, function):
    # With the mapping disabled the function is not invoked: its Errors metric often has no data.
    handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW)))

    handlers.on_alarm_state_change(
        inbound(
            eventbridge_alarm(function.alarm_arn, "INSUFFICIENT_DATA", NOW + timedelta(minutes=2))
        )
    )

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.HALF_OPEN
    assert breaker.alarm_summary == "INSUFFICIENT_DATA"


def test_an_alarm_of_another_account_cannot_be_set(breaker, function):
    from django.core.exceptions import ValidationError

    elsewhere = function.alarm_arn.replace("222222222222", "999999999999")
    with pytest.raises(ValidationError, match="is not an alarm of 222222222222"):
        actions.do_update_settings(breaker, actor="ada", alarms=[elsewhere])
    breaker.refresh_from_db()
    assert breaker.alarms == [function.alarm_arn]


def test_the_tick_is_a_recurring_worker_schedule():
    from console import schedules

    assert ("breaker.tick", "breaker.tasks.tick", 1) in [
        (r.name, r.func, r.minutes) for r in schedules.registered()
    ]
