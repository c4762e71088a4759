"""Two workers ticking at once probe a breaker once (the lease is a conditional update)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from breaker import actions
from breaker.models import Breaker, Probe
from tests.breaker.conftest import NOW


@pytest.mark.django_db(transaction=True)
def test_two_workers_ticking_at_once_probe_a_breaker_once(breaker, function, monkeypatch):
    function.set_mapping(False)
    # Set up by hand: outside a test transaction, going half-open would enqueue a probe at once.
    Breaker.objects.filter(pk=breaker.pk).update(state=Breaker.State.HALF_OPEN, next_probe_at=NOW)
    function.send("order-1")
    function.send("order-2")
    start = threading.Barrier(2)
    loser_done = threading.Event()
    results: list = []
    errors: list = []

    # The winner's invocation lasts until the other worker has given up on the lease.
    def slow_answer(event):
        loser_done.wait(timeout=10)
        return None

    function.answer_with(slow_answer)
    function.answer_with(slow_answer)

    def worker():
        try:
            start.wait(timeout=10)
            result = actions.do_probe(breaker.pk, now=NOW)
            results.append(result)
            if result is None:
                loser_done.set()
        except Exception as exc:  # surfaced below
            errors.append(exc)
            loser_done.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(result is None for result in results) == [False, True]
    assert Probe.objects.count() == 1
    assert len(function.received) == 1
    assert function.queued() == 1
