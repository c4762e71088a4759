"""Keyset pagination for long, newest-first histories (the inbox, the audit history).

``OFFSET`` reads and throws away every row before the page, so the last page of 200,000 audit
events costs as much as reading them all. A keyset page instead starts from the row it is given
(``?older=<time>_<id>``: rows strictly older than it; ``?newer=...``: strictly newer), which the
``(time, id)`` index finds at once, on any page. The total is counted up to ``COUNT_LIMIT`` rows
only ("more than 1,000 events"), for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Model, Q, QuerySet
from django.http import QueryDict
from django.utils.dateparse import parse_datetime

PAGE_SIZE = 50
COUNT_LIMIT = 1_000


@dataclass
class KeysetPage:
    rows: list[Any]
    older: str  # the query string of the next (older) page, "" when this is the last page
    newer: str  # the query string of the previous (newer) page, "" when this is the first
    first: str  # the query string of the newest page (the filters alone)
    count: int  # rows in all, up to COUNT_LIMIT
    count_capped: bool  # more than COUNT_LIMIT rows match

    @property
    def has_other_pages(self) -> bool:
        return bool(self.older or self.newer)


def cursor_of(row: Model, field: str) -> str:
    return f"{getattr(row, field).isoformat()}_{row.pk}"


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """``(time, id)`` from a cursor, or ``None`` for anything malformed (the first page then)."""
    moment, _, pk = value.rpartition("_")
    try:
        parsed = parse_datetime(moment.replace(" ", "+"))  # a "+" may arrive as a space
    except ValueError:
        return None
    if parsed is None or parsed.tzinfo is None or not pk.isascii() or not pk.isdigit():
        return None
    if len(pk) > 18:
        return None
    return parsed, int(pk)


def page_of(
    rows: QuerySet[Any], query: QueryDict, *, field: str, size: int = PAGE_SIZE
) -> KeysetPage:
    """The page that ``query`` asks for (``older`` / ``newer`` cursor), newest first."""
    base = query.copy()
    for name in ("older", "newer", "page"):
        base.pop(name, None)
    count = rows.order_by()[: COUNT_LIMIT + 1].count()
    newer_cursor = parse_cursor(query.get("newer", ""))
    older_cursor = parse_cursor(query.get("older", "")) if newer_cursor is None else None
    newest_first = rows.order_by(f"-{field}", "-pk")
    if newer_cursor:
        moment, pk = newer_cursor
        after = Q(**{f"{field}__gt": moment}) | Q(**{field: moment, "pk__gt": pk})
        found = list(rows.filter(after).order_by(field, "pk")[: size + 1])
        more_newer = len(found) > size
        page = list(reversed(found[:size]))
        more_older = True
    else:
        if older_cursor:
            moment, pk = older_cursor
            before = Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "pk__lt": pk})
            found = list(newest_first.filter(before)[: size + 1])
            more_newer = True
        else:
            found = list(newest_first[: size + 1])
            more_newer = False
        more_older = len(found) > size
        page = found[:size]
    if not page:
        more_older = False
        more_newer = bool(newer_cursor or older_cursor)

    def link(name: str, row: Model) -> str:
        q = base.copy()
        q[name] = cursor_of(row, field)
        return q.urlencode()

    return KeysetPage(
        rows=page,
        older=link("older", page[-1]) if page and more_older else "",
        newer=(link("newer", page[0]) if page else base.urlencode()) if more_newer else "",
        first=base.urlencode(),
        count=min(count, COUNT_LIMIT),
        count_capped=count > COUNT_LIMIT,
    )
