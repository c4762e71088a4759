"""The reconcile pass: AWS is read back, lost notifications and hand-made changes are caught."""

from __future__ import annotations

from datetime import timedelta

from audit.models import AuditEvent
from breaker import actions
from breaker import aws as breaker_aws
from breaker.models import Breaker
from tests.breaker.conftest import NOW, REGION, build_function, half_open

LATER = NOW + timedelta(hours=3)  # after the wall clock, after every change made in moto


def open_by_alarm(breaker, function):
    half_open(breaker, function)
    function.answer_with(function_error="Unhandled")
    function.send("order-1")
    actions.do_probe(breaker.pk, now=NOW)
    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN


def test_a_mapping_enabled_by_hand_while_open_is_disabled_again_and_the_drift_recorded(
    breaker, function
):
    actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)
    function.set_mapping(True)

    actions.do_reconcile(now=LATER)

    breaker.refresh_from_db()
    assert function.mapping_state() == "Disabled"
    assert breaker.mapping_state == "Disabled"
    drift = breaker.transitions.first()
    assert (drift.cause, drift.from_state, drift.to_state, drift.actor) == (
        "drift",
        "open",
        "open",
        "worker",
    )
    assert "Enabled" in drift.reason
    assert AuditEvent.objects.filter(action="breaker.drift_corrected").count() == 1


def test_a_mapping_that_agrees_records_no_drift(breaker, function):
    actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)

    actions.do_reconcile(now=LATER)

    assert not breaker.transitions.filter(cause="drift").exists()


def test_an_alarm_that_went_to_alarm_without_a_notification_opens_on_the_next_reconcile(
    breaker, function
):
    function.set_alarm("ALARM", "Threshold Crossed: 9 errors")

    actions.do_reconcile(now=LATER)

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    assert function.mapping_state() == "Disabled"
    transition = breaker.transitions.first()
    assert (transition.cause, transition.reason, transition.actor) == (
        "reconcile",
        "Threshold Crossed: 9 errors",
        "worker",
    )


def test_an_alarm_that_cleared_without_a_notification_half_opens_on_the_next_reconcile(
    breaker, function
):
    function.set_alarm("ALARM")
    actions.do_reconcile(now=LATER)
    function.set_alarm("OK", "back to normal")

    actions.do_reconcile(now=LATER + timedelta(minutes=1))

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.HALF_OPEN


def test_reconcile_twice_changes_nothing_the_second_time(breaker, function):
    function.set_alarm("ALARM")
    actions.do_reconcile(now=LATER)
    count = breaker.transitions.count()

    actions.do_reconcile(now=LATER + timedelta(minutes=1))

    assert breaker.transitions.count() == count


def test_a_deleted_mapping_marks_the_breaker_broken_and_it_is_not_probed(breaker, function):
    function.client("lambda").delete_event_source_mapping(UUID=function.mapping_uuid)

    actions.do_reconcile(now=LATER)

    breaker.refresh_from_db()
    assert "no longer exists" in breaker.broken
    assert AuditEvent.objects.filter(action="breaker.broken").count() == 1
    actions.do_reconcile(now=LATER + timedelta(minutes=1))
    assert AuditEvent.objects.filter(action="breaker.broken").count() == 1
    assert actions.due_probe_ids(LATER) == []


def test_alarms_are_read_in_one_call_per_account_and_region(breaker, function, monkeypatch):
    second = build_function(function.account, name="payments-worker")
    actions.do_add_breaker(
        actor="fixture",
        name="payments",
        account=function.account,
        region=REGION,
        function_name=second.function_name,
        alarms=[second.alarm_name],
    )
    calls = []
    real = breaker_aws.describe_alarms

    def spy(account, region, names):
        calls.append(sorted(names))
        return real(account, region, names)

    monkeypatch.setattr(breaker_aws, "describe_alarms", spy)

    actions.do_reconcile(now=LATER)

    assert calls == [sorted([function.alarm_name, second.alarm_name])]


def test_the_back_off_end_half_opens_through_the_tick(breaker, function):
    open_by_alarm(breaker, function)
    function.send("order-2")

    report = actions.do_tick(now=NOW + timedelta(seconds=61))

    breaker.refresh_from_db()
    assert report.timers == 1
    assert breaker.probes.count() == 2  # the failed one, and one run by this tick
    assert breaker.transitions.filter(cause="timer").exists()
