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
