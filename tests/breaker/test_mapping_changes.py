"""Changing the event source mapping: bounded waits, and a failed change never loses the state."""

from __future__ import annotations

from dataclasses import replace

import pytest

from breaker import actions
from breaker import aws as breaker_aws
from breaker.models import Breaker
from tests.breaker.conftest import NOW

MAPPING = breaker_aws.Mapping(
    uuid="u",
    function_arn="arn:aws:lambda:eu-west-1:1:function:f",
    event_source_arn="",
    state="Disabling",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def test_the_wait_polls_until_the_mapping_is_stable(monkeypatch, production):
    answers = iter(["Disabling", "Disabling", "Disabled"])
    monkeypatch.setattr(
        breaker_aws, "get_mapping", lambda *a: replace(MAPPING, state=next(answers))
    )
    clock = FakeClock()

    mapping = breaker_aws.wait_for_mapping(
        production, "eu-west-1", "u", "Disabled", sleep=clock.sleep, monotonic=clock.monotonic
    )

    assert mapping.state == "Disabled"
    assert clock.sleeps == [1.0, 1.0]


def test_the_wait_is_bounded_and_says_where_the_mapping_is_stuck(monkeypatch, production):
    monkeypatch.setattr(breaker_aws, "get_mapping", lambda *a: MAPPING)
    clock = FakeClock()

    with pytest.raises(breaker_aws.BreakerAwsError, match="still Disabling after 30 s") as raised:
        breaker_aws.wait_for_mapping(
            production, "eu-west-1", "u", "Disabled", sleep=clock.sleep, monotonic=clock.monotonic
        )
    assert raised.value.retryable
    assert clock.now == 30


def test_a_failed_disable_keeps_the_open_state_and_the_reconcile_corrects_it(
    breaker, function, monkeypatch
):
    def refuse(*args):
        raise breaker_aws.BreakerAwsError(
            "ThrottlingException: Rate exceeded", code="ThrottlingException", retryable=True
        )

    with monkeypatch.context() as patch:
        patch.setattr(breaker_aws, "set_mapping_enabled", refuse)
        actions.do_trip(breaker, actor="oscar", reason="stop it", now=NOW)

    breaker.refresh_from_db()
    assert (breaker.state, breaker.mode) == ("open", "forced_open")
    assert "Rate exceeded" in breaker.mapping_error
    assert function.mapping_state() == "Enabled"

    actions.do_reconcile(now=NOW)

    breaker.refresh_from_db()
    assert function.mapping_state() == "Disabled"
    assert breaker.mapping_error == ""
    assert breaker.transitions.filter(cause="drift").exists()


def test_a_breaker_that_closes_while_an_alarm_lands_ends_with_the_mapping_disabled(
    breaker, function, monkeypatch
):
    """The close's enable call is answered after the alarm opened the breaker again: the
    mapping follows the breaker's state as it is after the call, not as it was before."""
    real = breaker_aws.set_mapping_enabled
    calls = []

    def enable_then_alarm(account, region, uuid, enabled):
        calls.append(enabled)
        answer = real(account, region, uuid, enabled)
        if enabled and len(calls) == 1:
            Breaker.objects.filter(pk=breaker.pk).update(state=Breaker.State.OPEN)
        return answer

    Breaker.objects.filter(pk=breaker.pk).update(state=Breaker.State.CLOSED)
    monkeypatch.setattr(breaker_aws, "set_mapping_enabled", enable_then_alarm)

    actions.converge_mapping(breaker.pk, NOW)

    assert calls == [True, False]
    assert function.mapping_state() == "Disabled"


def test_the_inbox_handler_disables_at_once_and_waits_for_disabled_after_the_commit(
    breaker, function, monkeypatch, django_capture_on_commit_callbacks
):
    from breaker import handlers
    from tests.breaker.events import eventbridge_alarm, inbound

    waits = []
    real = breaker_aws.wait_for_mapping

    def spy(*args, **kwargs):
        waits.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(breaker_aws, "wait_for_mapping", spy)
    with django_capture_on_commit_callbacks() as callbacks:
        handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW)))

    assert function.mapping_state() == "Disabled"
    assert waits == []  # nothing waited while the inbox's transaction was open
    for callback in callbacks:
        callback()
    assert waits == ["Disabled"]
    breaker.refresh_from_db()
    assert (breaker.mapping_state, breaker.mapping_error) == ("Disabled", "")


def test_a_mapping_stuck_after_the_commit_is_recorded_for_the_reconcile(
    breaker, function, monkeypatch, django_capture_on_commit_callbacks
):
    from breaker import handlers
    from tests.breaker.events import eventbridge_alarm, inbound

    def stuck(*args, **kwargs):
        raise breaker_aws.BreakerAwsError(
            "still Disabling after 30 s", code="MappingWaitTimeout", retryable=True
        )

    monkeypatch.setattr(breaker_aws, "wait_for_mapping", stuck)
    with django_capture_on_commit_callbacks(execute=True):
        handlers.on_alarm_state_change(inbound(eventbridge_alarm(function.alarm_arn, "ALARM", NOW)))

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    assert "still Disabling" in breaker.mapping_error
