"""Filters every page uses, so a time, a count or a sum of money reads the same everywhere.

``{% load console %}`` then:

- ``{{ event.at|when }}``: ``<time datetime=... title="3 hours ago">2026-11-30 08:41 UTC</time>``
  (one timestamp format: UTC with the zone shown, the relative time on hover);
  ``{{ event.at|when:"ago" }}`` also writes the relative time beside it, in small print.
- ``{{ event.at|utc }}``: the same words as plain text (for attributes, CSV, titles).
- ``{{ n|counted:"check" }}`` -> ``1 check``, ``2 checks``; ``{{ n|counted:"time,times" }}``
  or ``{{ n|counted:"repository,repositories" }}`` for irregular plurals.
- ``{{ amount|usd }}`` -> ``$1,234.56`` (``$0.00``, ``-$3.10``); ``None`` -> ``""``.
- ``{{ delta|duration }}`` -> ``1d 2h``.
"""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString

from console import clock

register = template.Library()

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M UTC"


@register.filter
def duration(value: timedelta | None) -> str:
    """A duration the way the settings spell it: ``24h``, ``90m``, ``1d 2h``, ``0s``."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts)


def _moment(value: object) -> datetime | None:
    """A datetime, or an ISO 8601 string (as stored in JSON histories), or ``None``."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def _as_utc(value: datetime) -> datetime:
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value.astimezone(UTC)


@register.filter
def utc(value: datetime | str | None) -> str:
    """``2026-11-30 08:41 UTC``; empty for ``None``."""
    value = _moment(value)
    if value is None:
        return ""
    return _as_utc(value).strftime(TIMESTAMP_FORMAT)


def relative(value: datetime, now: datetime | None = None) -> str:
    """``just now``, ``5 minutes ago``, ``in 2 hours``, ``3 days ago``: the largest whole unit."""
    now = now or clock.now()
    seconds = int((_as_utc(now) - _as_utc(value)).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now" if not future else "in under a minute"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400 * 7, "week"),
                       (86400, "day"), (3600, "hour"), (60, "minute")):  # fmt: skip
        if seconds >= size:
            words = counted(seconds // size, unit)
            return f"in {words}" if future else f"{words} ago"
    return "just now"  # pragma: no cover (60 s and more always match a unit above)


@register.filter
def ago(value: datetime | str | None) -> str:
    """The relative time alone: ``5 minutes ago``."""
    value = _moment(value)
    if value is None:
        return ""
    return relative(value)


@register.filter
def when(value: datetime | str | None, style: str = "") -> SafeString | str:
    """A ``<time>`` element in the console's one format; the relative time on hover, or beside
    it with ``when:"ago"``. ``None`` gives an empty string (chain ``|default:"never"``)."""
    value = _moment(value)
    if value is None:
        return ""
    moment = _as_utc(value)
    words = relative(moment)
    if style == "ago":
        return format_html(
            '<time datetime="{}" title="{}">{}</time> <span class="muted small">({})</span>',
            moment.isoformat(),
            words,
            moment.strftime(TIMESTAMP_FORMAT),
            words,
        )
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        words,
        moment.strftime(TIMESTAMP_FORMAT),
    )


@register.filter
def counted(value: int | None, forms: str) -> str:
    """``{{ n|counted:"check" }}`` -> ``1 check`` / ``3 checks`` / ``0 checks``;
    ``"repository,repositories"`` gives the plural explicitly."""
    number = int(value or 0)
    singular, _, plural = forms.partition(",")
    if not plural:
        plural = singular + "s"
    return f"{number:,} {singular if number == 1 else plural}"


@register.filter
def usd(value: object) -> str:
    """US dollars with two decimals and thousands separators: ``$1,234.56``."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return ""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"
