"""A breaker's states over the last 24 hours or 7 days, drawn as a server-rendered SVG (no script)
with the probes, manual actions and ramp steps marked, and the same facts as text.

Reads the transitions in the window plus the one before it (the state the window starts in) and
the probes in the window: three indexed queries, whatever the length of the history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from breaker.models import Breaker, BreakerTransition, Probe

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
WINDOW_WORDS = {"24h": "last 24 hours", "7d": "last 7 days"}
DEFAULT_WINDOW = "24h"
WIDTH = 1000  # SVG user units; the picture scales to its container
TICK_MARGIN = 25
MAX_PROBES = 500  # marks beyond this many would be a smear: the text says how many were left out
STATE_WORDS = dict(Breaker.State.choices)
CAUSE_WORDS = dict(BreakerTransition.Cause.choices)


@dataclass(frozen=True)
class Band:
    state: str
    start: datetime
    end: datetime
    x: float
    width: float

    @property
    def label(self) -> str:
        return STATE_WORDS.get(self.state, self.state)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def duration_text(self) -> str:
        return human_duration(self.duration)


@dataclass(frozen=True)
class Mark:
    kind: str  # "probe", "manual", "ramp"
    at: datetime
    x: float
    label: str
    css: str  # the class that colours it


@dataclass
class Timeline:
    window: str
    start: datetime
    end: datetime
    bands: list[Band] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    probes_left_out: int = 0

    width: int = WIDTH

    @property
    def window_words(self) -> str:
        return WINDOW_WORDS[self.window]

    @property
    def probe_marks(self) -> list[Mark]:
        return [mark for mark in self.marks if mark.kind == "probe"]

    @property
    def action_marks(self) -> list[Mark]:
        return [mark for mark in self.marks if mark.kind != "probe"]

    @property
    def summary(self) -> str:
        """One sentence for the SVG's description and for readers of the text alternative."""
        totals: dict[str, timedelta] = {}
        for band in self.bands:
            totals[band.state] = totals.get(band.state, timedelta()) + band.duration
        parts = [
            f"{STATE_WORDS.get(state, state)} {human_duration(total)}"
            for state, total in sorted(totals.items(), key=lambda item: -item[1])
        ]
        opened = sum(1 for band in self.bands[1:] if band.state == Breaker.State.OPEN)
        probes = self.probe_marks
        passed = sum(1 for mark in probes if mark.css == "probe-passed")
        manual = sum(1 for mark in self.marks if mark.kind == "manual")
        text = f"In the {self.window_words}: " + (", ".join(parts) or "no data")
        text += f"; opened {counted(opened, 'time', 'times')}"
        text += f"; {counted(len(probes) + self.probes_left_out, 'probe', 'probes')}"
        if probes:
            text += f" ({passed} passed)"
        text += f"; {counted(manual, 'manual action', 'manual actions')}."
        return text


def counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def human_duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def build(breaker: Breaker, *, now: datetime, window: str = DEFAULT_WINDOW) -> Timeline:
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    start = now - WINDOWS[window]
    timeline = Timeline(window=window, start=start, end=now)
    span = (now - start).total_seconds()

    def x_of(at: datetime) -> float:
        return round(max(0.0, min(span, (at - start).total_seconds())) / span * WIDTH, 2)

    changes = list(
        breaker.transitions.filter(at__gt=start, at__lte=now)
        .order_by("at", "id")
        .only("breaker_id", "at", "from_state", "to_state", "cause", "actor", "reason")
    )
    before = (
        breaker.transitions.filter(at__lte=start)
        .order_by("-at", "-id")
        .only("breaker_id", "to_state")
        .first()
    )
    if before is not None:
        state = before.to_state
    elif changes:
        state = changes[0].from_state
    else:
        state = breaker.state
    since = start
    for change in changes:
        if change.to_state != state:
            _add_band(timeline, state, since, change.at, x_of)
            state, since = change.to_state, change.at
        if change.cause in (BreakerTransition.Cause.MANUAL, BreakerTransition.Cause.RAMP):
            kind = "manual" if change.cause == BreakerTransition.Cause.MANUAL else "ramp"
            words = f"{STATE_WORDS.get(change.to_state, change.to_state)}"
            label = f"{CAUSE_WORDS.get(change.cause, change.cause)} by {change.actor}: {words}"
            if change.reason:
                label += f" ({change.reason})"
            timeline.marks.append(Mark(kind, change.at, x_of(change.at), label, f"mark-{kind}"))
    _add_band(timeline, state, since, now, x_of)

    probes = list(
        breaker.probes.filter(at__gt=start, at__lte=now)
        .order_by("-at", "-id")
        .only("breaker_id", "at", "outcome", "detail")[: MAX_PROBES + 1]
    )
    if len(probes) > MAX_PROBES:
        timeline.probes_left_out = (
            breaker.probes.filter(at__gt=start, at__lte=now).count() - MAX_PROBES
        )
        probes = probes[:MAX_PROBES]
    outcomes = dict(Probe.Outcome.choices)
    for probe in reversed(probes):
        label = f"probe {outcomes.get(probe.outcome, probe.outcome)}"
        if probe.detail:
            label += f": {probe.detail[:120]}"
        timeline.marks.append(
            Mark("probe", probe.at, x_of(probe.at), label, f"probe-{probe.outcome}")
        )
    timeline.marks.sort(key=lambda mark: mark.at)
    timeline.ticks = _ticks(start, now, window, x_of)
    return timeline


XOf = Callable[[datetime], float]


def _add_band(timeline: Timeline, state: str, start: datetime, end: datetime, x_of: XOf) -> None:
    if end <= start and timeline.bands:
        return
    x = x_of(start)
    timeline.bands.append(Band(state, start, end, x, max(round(x_of(end) - x, 2), 0.5)))


def _ticks(start: datetime, end: datetime, window: str, x_of: XOf) -> list[tuple[float, str]]:
    """Axis labels: every 6 hours for a day, every day for a week (UTC)."""
    step = timedelta(hours=6) if window == "24h" else timedelta(days=1)
    first = start.replace(minute=0, second=0, microsecond=0)
    if window == "7d":
        first = first.replace(hour=0)
    while first <= start:
        first += step
    ticks = []
    at = first
    while at < end:
        x = x_of(at)
        if TICK_MARGIN <= x <= WIDTH - TICK_MARGIN:  # a label at the very edge would be cut
            ticks.append((x, f"{at:%H:%M}" if window == "24h" else f"{at:%a %d}"))
        at += step
    return ticks
