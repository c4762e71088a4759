"""Server-rendered SVG bar charts: no script, no library, nothing the Content-Security-Policy
refuses (the SVG carries no style attribute: colours are classes in console.css).

A chart is drawn from ``Bar`` rows; its text alternative is the table rendered beside it
(``templates/console/bar_chart.html``), which a screen reader reads instead of the picture."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 320
ROW = 22
LABEL = 120
VALUE = 70


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value in words ("1.2 GB", "3 breakers")
    tone: str = ""  # ok, bad, warn, info: a class of console.css
    href: str = ""


@dataclass(frozen=True)
class Drawn:
    bar: Bar
    y: int
    width: int
    text_y: int
    value_x: int


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart, one row per bar, scaled to the largest value."""

    title: str
    bars: list[Bar]
    empty: str = "Nothing to show yet."

    @property
    def summary(self) -> str:
        """The whole chart in words, for the picture's accessible name."""
        if not self.bars:
            return f"{self.title}: {self.empty}"
        return f"{self.title}: " + "; ".join(f"{bar.label} {bar.shown}" for bar in self.bars)

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * ROW + 4

    @property
    def width(self) -> int:
        return WIDTH

    @property
    def label_width(self) -> int:
        return LABEL

    @property
    def drawn(self) -> list[Drawn]:
        largest = max((bar.value for bar in self.bars), default=0) or 1
        room = WIDTH - LABEL - VALUE
        return [
            Drawn(
                bar=bar,
                y=index * ROW + 4,
                width=max(1, round(room * bar.value / largest)) if bar.value else 0,
                text_y=index * ROW + 17,
                value_x=LABEL + (max(1, round(room * bar.value / largest)) if bar.value else 0) + 4,
            )
            for index, bar in enumerate(self.bars)
        ]
