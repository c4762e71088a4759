"""What the dashboard asks of the breakers (breakers by state, breakers open too long): plain
queries with no import of the dashboard, so its owner calls them from its own tiles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Subquery

from breaker.models import Breaker, BreakerTransition
from console import clock

STATE_ORDER = [
    Breaker.State.OPEN,
    Breaker.State.HALF_OPEN,
    Breaker.State.RAMPING,
    Breaker.State.CLOSED,
]


@dataclass(frozen=True)
class StateCount:
    state: str  # the code name (``half_open``)
    label: str  # human words (``half-open``)
    count: int


def state_counts() -> list[StateCount]:
    """Every state with its number of breakers (zeros included), worst first; one query."""
    found = dict(
        Breaker.objects.order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    return [
        StateCount(state.value, state.label, found.get(state.value, 0)) for state in STATE_ORDER
    ]


@dataclass(frozen=True)
class OpenBreaker:
    breaker: Breaker
    since: datetime  # when it left closed

    @property
    def open_for(self) -> timedelta:
        return clock.now() - self.since


def open_longer_than(hours: float, *, now: datetime | None = None) -> list[OpenBreaker]:
    """Breakers not taking their traffic (open or half-open) for longer than ``hours``, longest
    first. "Since" is the last transition out of closed (or out of a gradual close); one query."""
    now = now or clock.now()
    left_closed = BreakerTransition.objects.filter(
        breaker=OuterRef("pk"),
        from_state__in=[Breaker.State.CLOSED, Breaker.State.RAMPING],
        to_state=Breaker.State.OPEN,
    ).order_by("-at", "-id")
    rows = (
        Breaker.objects.filter(state__in=[Breaker.State.OPEN, Breaker.State.HALF_OPEN])
        .select_related("account")
        .annotate(left_closed_at=Subquery(left_closed.values("at")[:1]))
        .filter(left_closed_at__lte=now - timedelta(hours=hours))
        .order_by("left_closed_at", "name")
    )
    return [OpenBreaker(row, row.left_closed_at) for row in rows]  # type: ignore[attr-defined]
