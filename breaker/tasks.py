"""Worker entry points (django-q): thin, they take ids and call actions."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from breaker import actions
from console import clock

# django-q schedules by whole minutes. While a breaker is recovering, the minute's tick stays and
# runs the due probes and timers every PUMP_INTERVAL until PUMP_SPAN, so a half-open breaker is
# probed at its interval (30 s by default), not once a minute. Nothing recovering: it returns at
# once. The probes themselves are separate tasks, claimed with a lease, so an overlapping tick
# never probes a breaker twice.
PUMP_INTERVAL = timedelta(seconds=10)
PUMP_SPAN = timedelta(seconds=50)


def tick(
    *,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] | None = None,
) -> str:
    """Every minute: reconcile, end finished back-offs, enqueue the due probes; then, while any
    breaker is recovering, the same every 10 s for the rest of the minute."""
    now = now or clock.now
    started = now()
    report = actions.do_tick(now=started, inline=False)
    deadline = started + PUMP_SPAN
    rounds = 0
    while now() + PUMP_INTERVAL <= deadline and actions.recovering_before(deadline):
        sleep(PUMP_INTERVAL.total_seconds())
        actions.do_run_due(now=now(), inline=False, report=report)
        rounds += 1
    return (
        f"reconciled {report.reconciled}, timers {report.timers}, probes {len(report.probes)}, "
        f"errors {report.errors}, extra rounds {rounds}"
    )


def probe(breaker_id: int, actor: str = actions.WORKER) -> str:
    """One probe; ``actor`` is the operator who asked for it, or the worker."""
    result = actions.do_probe(breaker_id, actor=actor)
    return "not due or taken by another worker" if result is None else result.outcome


def converge(breaker_id: int) -> str:
    """The mapping brought in line with the breaker's state (after a trip or reset by hand)."""
    state = actions.converge_mapping(breaker_id, clock.now())
    return f"mapping {state or 'unknown'}"
