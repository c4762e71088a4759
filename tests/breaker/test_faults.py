"""No stuck breaker after an AWS fault: the error is recorded, nothing crashes, and the
recurring passes converge once AWS answers again (see tests/cleanup/test_faults.py)."""

from __future__ import annotations

from breaker import actions
from tests.breaker.conftest import half_open
from tests.cleanup.test_faults import sts_unreachable


def test_a_trip_during_an_sts_outage_records_the_error_and_the_reconcile_converges_after(
    breaker, function, monkeypatch
):
    with sts_unreachable(monkeypatch):
        actions.do_trip(breaker, actor="oscar", reason="incident")
        report = actions.do_reconcile()

    breaker.refresh_from_db()
    assert (breaker.state, breaker.mode) == ("open", "forced_open")
    assert "could not make the mapping Disabled" in breaker.mapping_error
    assert report.errors  # the reconcile said it could not read, and did not crash
    assert function.mapping_state() == "Enabled"

    actions.do_reconcile()

    breaker.refresh_from_db()
    assert function.mapping_state() == "Disabled"
    assert breaker.mapping_state == "Disabled"


def test_a_probe_during_an_sts_outage_is_recorded_as_an_error_and_frees_its_lease(
    breaker, function, monkeypatch
):
    half_open(breaker, function)
    with sts_unreachable(monkeypatch):
        probe = actions.do_probe(breaker.pk)

    breaker.refresh_from_db()
    assert probe is not None and probe.outcome == "error"
    assert breaker.probe_lease_until is None
    assert breaker.state == "half_open"


def test_the_reconcile_between_a_trip_and_its_hand_off_sees_no_drift(
    breaker, function, monkeypatch
):
    """Found by the hand-off browser test: the reconcile ran before the worker disabled the
    mapping and recorded a 'drift' the console itself was correcting."""
    from breaker.actions import mapping

    handed_off: list[int] = []
    monkeypatch.setattr(mapping, "enqueue_convergence", handed_off.append)
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        actions.do_trip(breaker, actor="oscar", reason="payments down", in_worker=True)
    actions.do_reconcile()

    assert handed_off == [breaker.pk]
    assert list(breaker.transitions.values_list("cause", flat=True)) == ["manual"]
    assert function.mapping_state() == "Enabled"  # left to the worker's task


def test_a_hand_off_whose_task_was_lost_is_finished_by_the_reconcile(
    breaker, function, monkeypatch
):
    from datetime import timedelta

    from breaker.actions import mapping
    from breaker.models import HAND_OFF_PATIENCE
    from console import clock

    monkeypatch.setattr(mapping, "enqueue_convergence", lambda breaker_id: None)  # lost
    actions.do_reset(breaker, actor="oscar", in_worker=True)
    function.set_mapping(False)  # as if a trip had disabled it before

    actions.do_reconcile(now=clock.now() + HAND_OFF_PATIENCE + timedelta(seconds=1))

    breaker.refresh_from_db()
    assert function.mapping_state() == "Enabled"
    assert breaker.mapping_handed_off_at is None
