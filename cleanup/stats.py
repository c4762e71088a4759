"""Figures of the cleanup for the dashboard's pictures: what could be reclaimed now, per
repository, and what was reclaimed, week by week. One grouped query each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncWeek

from cleanup.models import DeletionCheck
from console import clock

RECLAIMABLE = ["awaiting_approval", "approved"]


@dataclass(frozen=True)
class RepositoryBytes:
    repository_id: int
    name: str
    account_id: str
    region: str
    bytes: int
    images: int


@dataclass(frozen=True)
class WeekBytes:
    week: date  # the Monday that starts the week (UTC)
    bytes: int
    images: int


def reclaimable_by_repository(limit: int | None = 20) -> list[RepositoryBytes]:
    """Repositories with images awaiting deletion (awaiting approval or approved), the most
    bytes first; ``limit`` of them (None: all)."""
    grouped = (
        DeletionCheck.objects.filter(status__in=RECLAIMABLE)
        .order_by()
        .values(
            "image__repository_id",
            "image__repository__name",
            "image__repository__region",
            "image__repository__account__account_id",
        )
        .annotate(bytes=Sum("image__size_bytes"), images=Count("id"))
        .order_by("-bytes", "image__repository__name")
    )
    if limit is not None:
        grouped = grouped[:limit]
    return [
        RepositoryBytes(
            repository_id=row["image__repository_id"],
            name=row["image__repository__name"],
            account_id=row["image__repository__account__account_id"],
            region=row["image__repository__region"],
            bytes=row["bytes"] or 0,
            images=row["images"],
        )
        for row in grouped
    ]


def _monday(moment: datetime | date) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def reclaimed_by_week(weeks: int = 12, now: datetime | None = None) -> list[WeekBytes]:
    """Bytes the console deleted in each of the last ``weeks`` weeks (oldest first, weeks with
    nothing included as 0), from the deleted checks (the time of deletion is their last
    change)."""
    now = now or clock.now()
    first = _monday(now) - timedelta(weeks=weeks - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=now.tzinfo)
    grouped = (
        DeletionCheck.objects.filter(status="deleted", updated_at__gte=start)
        .order_by()
        .annotate(week=TruncWeek("updated_at"))
        .values("week")
        .annotate(bytes=Sum("bytes_reclaimed"), images=Count("id"))
    )
    found = {_monday(row["week"]): (row["bytes"] or 0, row["images"]) for row in grouped}
    return [
        WeekBytes(week, *found.get(week, (0, 0)))
        for week in (first + timedelta(weeks=n) for n in range(weeks))
    ]
