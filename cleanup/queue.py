"""The deletion queue as the pages read it: the checks matching the filters, the tabs' counts,
the totals of a selection, one page of rows. Each is one query whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from cleanup.forms import MB, QUEUE_TABS
from cleanup.models import DeletionCheck

PAGE_SIZE = 50
# Rows whose state the worker is about to change: the page watches them until they are final.
WAITING = ("approved", "running")
# Tabs whose totals (bytes, repositories) are shown: what is about to be deleted. The others
# show their count only (a sum over thousands of closed checks tells an operator nothing).
TOTALLED = ("awaiting_approval", "approved")


def matching(filters: dict[str, Any], now: datetime) -> QuerySet[DeletionCheck]:
    """Checks matching the row filters of ``QueueFilterForm.filters()`` (any tab)."""
    checks = DeletionCheck.objects.all()
    if "account" in filters:
        checks = checks.filter(image__repository__account__account_id=filters["account"])
    if "repository" in filters:
        checks = checks.filter(image__repository_id=filters["repository"])
    if "min_mb" in filters:
        checks = checks.filter(image__size_bytes__gt=int(float(filters["min_mb"]) * MB))
    if "older_days" in filters:
        checks = checks.filter(image__pushed_at__lt=now - timedelta(days=filters["older_days"]))
    if "trigger" in filters:
        checks = checks.filter(trigger=filters["trigger"])
    return checks


def in_tab(checks: QuerySet[DeletionCheck], tab: str) -> QuerySet[DeletionCheck]:
    return checks.filter(status__in=QUEUE_TABS[tab][1])


def tab_counts(checks: QuerySet[DeletionCheck]) -> list[tuple[str, str, int]]:
    """(tab, label, count) for every tab, from one GROUP BY over the matching checks."""
    counts = dict(
        checks.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    return [
        (key, label, sum(counts.get(status, 0) for status in statuses))
        for key, (label, statuses) in QUEUE_TABS.items()
    ]


@dataclass
class Totals:
    """What a selection amounts to: ``Delete 12 images, 3.4 GB, from 3 repositories?``."""

    checks: int = 0
    bytes: int = 0
    repositories: int = 0


def totals(checks: QuerySet[DeletionCheck]) -> Totals:
    row = checks.order_by().aggregate(
        checks=Count("id"),
        bytes=Sum("image__size_bytes"),
        repositories=Count("image__repository_id", distinct=True),
    )
    return Totals(row["checks"] or 0, row["bytes"] or 0, row["repositories"] or 0)


def page_of(checks: QuerySet[DeletionCheck], page: int) -> tuple[list[DeletionCheck], bool]:
    """One page of rows, newest change first, and whether a next page exists. The page's ids
    come first from a narrow query (a tab of several statuses is sorted on two columns, not on
    whole rows with their evidence), then the rows by id; a row more than the page is read
    instead of counting."""
    start = (page - 1) * PAGE_SIZE
    ids = list(
        checks.order_by("-updated_at", "-id").values_list("id", flat=True)[
            start : start + PAGE_SIZE + 1
        ]
    )
    return rows(ids[:PAGE_SIZE]), len(ids) > PAGE_SIZE


def rows(ids: list[int]) -> list[DeletionCheck]:
    return list(
        DeletionCheck.objects.filter(pk__in=ids)
        .select_related("image__repository__account")
        .defer("timeline")
        .order_by("-updated_at", "-id")
    )


def open_checks_by_repository(repository_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Per repository: bytes awaiting deletion (awaiting approval or approved) and the open
    checks an opt-out would cancel. One grouped query."""
    checks = DeletionCheck.objects.filter(status__in=DeletionCheck.OPEN)
    if repository_ids is not None:
        checks = checks.filter(image__repository_id__in=repository_ids)
    grouped = (
        checks.order_by()
        .values("image__repository_id")
        .annotate(
            reclaimable=Sum(
                "image__size_bytes", filter=Q(status__in=["awaiting_approval", "approved"])
            ),
            cancellable=Count("id", filter=Q(status__in=DeletionCheck.CANCELLABLE)),
        )
    )
    return {
        row["image__repository_id"]: {
            "reclaimable": row["reclaimable"] or 0,
            "cancellable": row["cancellable"] or 0,
        }
        for row in grouped
    }
