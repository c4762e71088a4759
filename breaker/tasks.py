"""Worker entry points (django-q): thin, they take ids and call actions."""

from __future__ import annotations

from breaker import actions


def tick() -> str:
    """Every minute: reconcile, end finished back-offs, enqueue the due probes."""
    report = actions.do_tick(inline=False)
    return f"reconciled {report.reconciled}, timers {report.timers}, probes {len(report.probes)}, errors {report.errors}"


def probe(breaker_id: int) -> str:
    result = actions.do_probe(breaker_id)
    return "not due or taken by another worker" if result is None else result.outcome
