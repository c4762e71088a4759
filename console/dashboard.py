"""Dashboard tiles. Each app registers a function that returns a tile for a user, or ``None``
when the user may not see it; the dashboard renders them in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from console.charts import Bar, BarChart


@dataclass
class Tile:
    title: str
    template: str
    order: int = 100
    context: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    attention: bool = False


TileProvider = Callable[[HttpRequest], Tile | None]
_providers: list[TileProvider] = []


def register(provider: TileProvider) -> TileProvider:
    if provider not in _providers:
        _providers.append(provider)
    return provider


def tiles_for(request: HttpRequest) -> list[Tile]:
    tiles = [tile for provider in _providers if (tile := provider(request)) is not None]
    return sorted(tiles, key=lambda tile: (not tile.attention, tile.order))


# --- Needs attention, and the pictures ----------------------------------------------------------
# The figures come from the apps (cleanup.stats, breaker.charts, cleanup.actions.archive), one
# grouped query each; what is drawn and said about them is decided here.

OPEN_TOO_LONG_HOURS = 1
WEEKS = 8
TOP_REPOSITORIES = 8
LIST_LIMIT = 10
STATE_TONES = {"closed": "ok", "open": "bad", "half_open": "warn", "ramping": "info"}


@dataclass(frozen=True)
class Attention:
    text: str
    href: str = ""
    tone: str = "bad"


def needs_attention(request: HttpRequest, worker: Any, now: datetime) -> list[Attention]:
    """What waits on a person, in words, each with the page where it is dealt with (only pages
    the user may open)."""
    from accounts.models import AwsAccount
    from breaker import charts as breaker_charts
    from cleanup.actions import archive
    from cleanup.models import DeletionCheck
    from console.templatetags.console import counted, duration

    user = request.user
    items: list[Attention] = []
    if worker.silent:
        items.append(
            Attention(
                f"No worker seen for {duration(worker.silent_for)}"
                if worker.last_beat
                else "No worker has run yet"
            )
        )
    if user.has_perm("cleanup.view_deletioncheck"):
        failed = (
            DeletionCheck.objects.filter(status=DeletionCheck.Status.FAILED)
            .order_by()[:1000]
            .count()
        )
        if failed:
            items.append(
                Attention(f"{counted(failed, 'check')} failed", "/deletions/?status=failed")
            )
    if user.has_perm("cleanup.view_repository"):
        for restore in archive.needs_attention(now=now)[:LIST_LIMIT]:
            image = restore.image
            items.append(
                Attention(
                    f"{image.label} was archived and is in use again: restored automatically",
                    f"/repositories/{image.repository_id}/",
                    "warn",
                )
            )
    if user.has_perm("breaker.view_breaker"):
        for late in breaker_charts.open_longer_than(OPEN_TOO_LONG_HOURS, now=now)[:LIST_LIMIT]:
            breaker = late.breaker
            items.append(
                Attention(
                    f"Breaker {breaker.name} {breaker.get_state_display()} "
                    f"for {duration(_whole_minutes(now - late.since))}",
                    f"/breakers/{breaker.pk}/",
                    "bad" if breaker.state == "open" else "warn",
                )
            )
    if user.has_perm("accounts.view_awsaccount"):
        for account in AwsAccount.objects.filter(enabled=True, last_verification_ok=False)[
            :LIST_LIMIT
        ]:
            items.append(
                Attention(
                    f"Account {account.name} ({account.account_id}) cannot be read",
                    f"/accounts/#account-{account.account_id}",
                )
            )
    return items


def _whole_minutes(span: timedelta) -> timedelta:
    return timedelta(minutes=int(span.total_seconds() // 60))


def reclaimed_per_week(now: datetime) -> BarChart:
    """Bytes the console deleted, per week (Monday to Sunday, UTC), the last eight weeks."""
    from cleanup import stats

    bars = [
        Bar(f"week of {week.week:%b %d}", week.bytes, filesizeformat(week.bytes), "ok")
        for week in stats.reclaimed_by_week(WEEKS, now=now)
    ]
    return BarChart("Storage reclaimed per week", bars, "Nothing deleted yet.")


def reclaimable_by_repository() -> BarChart:
    """The repositories with the most bytes waiting to be deleted."""
    from cleanup import stats

    bars = [
        Bar(row.name, row.bytes, filesizeformat(row.bytes), "info", f"/repositories/{row.repository_id}/")
        for row in stats.reclaimable_by_repository(TOP_REPOSITORIES)
    ]  # fmt: skip
    return BarChart("Reclaimable now, by repository", bars, "Nothing awaits deletion.")


def breakers_by_state() -> BarChart:
    from breaker import charts as breaker_charts
    from console.templatetags.console import counted

    counts = breaker_charts.state_counts()
    bars = [
        Bar(
            row.label,
            row.count,
            counted(row.count, "breaker"),
            STATE_TONES.get(row.state, ""),
            "/breakers/",
        )
        for row in counts
    ]
    return BarChart("Breakers by state", bars if any(row.count for row in counts) else [],
                    "No breaker yet.")  # fmt: skip


def pictures_for(request: HttpRequest, now: datetime) -> list[dict[str, Any]]:
    """The dashboard's charts the user may see, each with the headings of its table."""
    user = request.user
    charts: list[dict[str, Any]] = []
    if user.has_perm("cleanup.view_deletioncheck"):
        charts.append({"id": "chart-reclaimed", "chart": reclaimed_per_week(now),
                       "label": "Week", "value": "Reclaimed"})  # fmt: skip
        charts.append({"id": "chart-reclaimable", "chart": reclaimable_by_repository(),
                       "label": "Repository", "value": "Reclaimable"})  # fmt: skip
    if user.has_perm("breaker.view_breaker"):
        charts.append({"id": "chart-breakers", "chart": breakers_by_state(),
                       "label": "State", "value": "Breakers"})  # fmt: skip
    return charts
