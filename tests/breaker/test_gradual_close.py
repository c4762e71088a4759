"""Gradual close: a breaker whose probes pass enables its mapping at a maximum concurrency of 2,
raises it step by step from the recurring tick while the alarm stays quiet, and ends with the
mapping's own setting (recorded before the console first changed anything, "none" included).
An ALARM during the ramp opens the breaker again. moto 5.2.5 stores and returns
``ScalingConfig.MaximumConcurrency`` (reference/moto.md), so no patch is needed here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase

from audit.models import AuditEvent
from breaker import actions, tasks
from breaker.forms import SettingsForm
from breaker.models import Breaker
from tests.breaker.conftest import NOW, half_open

STEP = 300  # seconds the alarm must stay quiet at each step


def concurrency(function) -> int | None:
    mapping = function.client("lambda").get_event_source_mapping(UUID=function.mapping_uuid)
    return (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")


def set_concurrency(function, limit: int | None) -> None:
    scaling = {} if limit is None else {"MaximumConcurrency": limit}
    function.client("lambda").update_event_source_mapping(
        UUID=function.mapping_uuid, ScalingConfig=scaling
    )


@pytest.fixture
def gradual(breaker) -> Breaker:
    actions.do_update_settings(
        breaker, actor="fixture", gradual_close=True, ramp_step_seconds=STEP, successes_to_close=1
    )
    return breaker


def open_then_pass_one_probe(breaker: Breaker, function) -> None:
    """ALARM (the mapping is disabled), OK (half-open), one message through: the ramp starts."""
    half_open(breaker, function)
    function.send("order-1")
    actions.do_probe(breaker.pk, now=NOW)
    breaker.refresh_from_db()


def tick_at(seconds: float) -> actions.TickReport:
    return actions.do_tick(now=NOW + timedelta(seconds=seconds))


def test_the_ramp_walks_2_5_20_on_the_tick_then_removes_the_limit_it_never_had(gradual, function):
    assert concurrency(function) is None  # the mapping as the team set it up: no limit

    open_then_pass_one_probe(gradual, function)

    assert gradual.state == Breaker.State.RAMPING
    assert gradual.original_scaling == {}  # recorded as "none" before the first change
    assert function.mapping_state() == "Enabled"
    assert concurrency(function) == 2

    seen = []
    for seconds in (STEP - 1, STEP, STEP + 60, 2 * STEP, 3 * STEP):
        tick_at(seconds)
        gradual.refresh_from_db()
        seen.append((seconds, gradual.state, concurrency(function)))

    assert seen == [
        (STEP - 1, "ramping", 2),  # one second short of a quiet step: no change
        (STEP, "ramping", 5),
        (STEP + 60, "ramping", 5),
        (2 * STEP, "ramping", 20),
        (3 * STEP, "closed", None),  # the original setting back: no ScalingConfig at all
    ]
    assert function.mapping_state() == "Enabled"
    assert gradual.original_scaling is None  # forgotten: the next ramp reads it afresh
    history = [
        (t.from_state, t.to_state, t.cause) for t in gradual.transitions.order_by("at", "id")
    ]
    assert history[-4:] == [
        ("half_open", "ramping", "probe"),
        ("ramping", "ramping", "ramp"),
        ("ramping", "ramping", "ramp"),
        ("ramping", "closed", "ramp"),
    ]
    assert "at most 5 at once (step 2 of 4)" in gradual.transitions.all()[2].reason
    assert AuditEvent.objects.filter(action="breaker.ramp_started").count() == 1
    assert AuditEvent.objects.filter(action="breaker.ramp_step").count() == 2
    assert AuditEvent.objects.filter(
        action="breaker.closed", at=NOW + timedelta(seconds=3 * STEP)
    ).exists()


def test_the_ramp_ends_with_the_original_limit_and_skips_steps_above_it(gradual, function):
    set_concurrency(function, 10)

    open_then_pass_one_probe(gradual, function)
    assert gradual.original_scaling == {"MaximumConcurrency": 10}
    assert gradual.ramp_plan == [2, 5]  # 20 would loosen a mapping limited to 10

    steps = []
    for seconds in (STEP, 2 * STEP):
        tick_at(seconds)
        gradual.refresh_from_db()
        steps.append((gradual.state, concurrency(function)))

    assert steps == [("ramping", 5), ("closed", 10)]
    assert gradual.mapping_max_concurrency == 10


def test_an_alarm_mid_ramp_opens_again_and_the_next_ramp_still_restores_the_original(
    gradual, function
):
    set_concurrency(function, 50)
    open_then_pass_one_probe(gradual, function)
    tick_at(STEP)
    gradual.refresh_from_db()
    assert concurrency(function) == 5

    function.set_alarm("ALARM")  # the tick's reconcile reads it (as would the webhook)
    tick_at(STEP + 30)
    gradual.refresh_from_db()

    assert gradual.state == Breaker.State.OPEN
    assert function.mapping_state() == "Disabled"
    assert (gradual.ramp_step, gradual.ramp_step_since) == (None, None)
    assert "during the gradual close, at 5" in gradual.transitions.first().reason
    assert gradual.original_scaling == {"MaximumConcurrency": 50}  # kept, not the step's 5
    tick_at(10 * STEP)  # no ramp step while open
    gradual.refresh_from_db()
    assert gradual.state == Breaker.State.OPEN

    # The alarm clears; the probe passes; a new ramp from 2 ends at the original 50.
    function.set_alarm("OK", reason="Threshold Crossed: 0 errors")
    function.send("order-2")
    tick_at(20 * STEP)  # reconcile: half-open; then the due probe runs
    gradual.refresh_from_db()
    assert (gradual.state, concurrency(function)) == ("ramping", 2)
    for step in range(1, 4):
        tick_at(20 * STEP + step * STEP)
    gradual.refresh_from_db()
    assert (gradual.state, concurrency(function)) == ("closed", 50)


def test_a_reset_during_the_ramp_closes_at_once_with_the_original_setting(gradual, function):
    open_then_pass_one_probe(gradual, function)
    assert concurrency(function) == 2

    actions.do_reset(gradual, actor="oscar", now=NOW + timedelta(seconds=10))

    gradual.refresh_from_db()
    assert (gradual.state, gradual.mode, gradual.ramp_step) == ("closed", "auto", None)
    assert concurrency(function) is None
    assert function.mapping_state() == "Enabled"


def test_the_worker_tick_steps_the_ramp_and_hands_the_mapping_change_to_a_task(
    gradual, function, monkeypatch
):
    open_then_pass_one_probe(gradual, function)
    at = NOW + timedelta(seconds=STEP)
    monkeypatch.setattr("console.clock.now", lambda: at)

    with TestCase.captureOnCommitCallbacks() as handed_off:
        tasks.tick(sleep=lambda seconds: None, now=lambda: at)

    gradual.refresh_from_db()
    assert gradual.ramp_concurrency == 5
    assert gradual.mapping_handed_off_at == at
    assert gradual.mapping_settling  # the page says "setting the concurrency to 5…"
    assert concurrency(function) == 2  # the tick itself did not wait on AWS
    for callback in handed_off:
        callback()  # the convergence task, as the worker runs it
    gradual.refresh_from_db()
    assert concurrency(function) == 5
    assert gradual.mapping_handed_off_at is None
    assert not gradual.mapping_settling


def test_without_gradual_close_probes_close_at_once_and_scaling_is_untouched(breaker, function):
    set_concurrency(function, 10)
    Breaker.objects.filter(pk=breaker.pk).update(successes_to_close=1)
    open_then_pass_one_probe(breaker, function)

    assert breaker.state == Breaker.State.CLOSED
    assert breaker.original_scaling is None
    assert concurrency(function) == 10


@pytest.mark.parametrize(
    "text, error",
    [
        ("1, 5", "from 2 to 1000"),
        ("5, 2", "above the one before"),
        ("2, five", "whole numbers"),
        ("2, 1001", "from 2 to 1000"),
    ],
)
def test_bad_ramp_steps_are_refused_with_a_clear_error(breaker, text, error):
    data = {
        "alarms": "\n".join(breaker.alarms),
        "successes_to_close": 3,
        "probe_interval_seconds": 30,
        "backoff_seconds": 60,
        "backoff_cap_seconds": 900,
        "close_when_queue_empty": "on",
        "gradual_close": "on",
        "ramp_steps": text,
        "ramp_step_seconds": 300,
    }
    form = SettingsForm(data, instance=breaker)

    assert not form.is_valid()
    assert error in " ".join(form.errors["ramp_steps"])
    breaker.refresh_from_db()
    assert breaker.ramp_steps == [2, 5, 20]
