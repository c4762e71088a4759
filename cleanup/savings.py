"""What the cleanup saves, in USD a month, with ECR's archival storage class priced in.

- A deleted image saves its size at ``CLEANUP_PRICE_PER_GB_MONTH``.
- An archived image saves the difference between the standard and the archive price
  (``CLEANUP_ARCHIVE_PRICE_PER_GB_MONTH``), and still costs the archive price.
- ECR charges an archived image for 90 days at least: one restored or deleted earlier costs the
  days it did not stay (``minimum_charges``); one archived now would cost the rest of its 90 days
  if it were restored or deleted today (``minimum_still_due``).
A month is 30 days here, as in AWS's GB-month.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum

from cleanup.models import MIN_ARCHIVE_DAYS, Image, Repository, StorageStatus

GB = 1024**3
MONTH = timedelta(days=30)
MINIMUM = timedelta(days=MIN_ARCHIVE_DAYS)


def _gb(size_bytes: int) -> float:
    return size_bytes / GB


def archive_saving_per_month(size_bytes: int) -> float:
    standard: float = settings.CLEANUP_PRICE_PER_GB_MONTH
    archive: float = settings.CLEANUP_ARCHIVE_PRICE_PER_GB_MONTH
    return round(_gb(size_bytes) * (standard - archive), 4)


def minimum_charge(size_bytes: int, archived_at: datetime, ended_at: datetime) -> float:
    """What ECR charges for the part of the 90 days an image archived at ``archived_at`` did not
    stay in the archive when it left it (restored or deleted) at ``ended_at``."""
    short = MINIMUM - max(ended_at - archived_at, timedelta(0))
    if short <= timedelta(0):
        return 0.0
    archive: float = settings.CLEANUP_ARCHIVE_PRICE_PER_GB_MONTH
    return _gb(size_bytes) * archive * (short / MONTH)


@dataclass
class Savings:
    deleted_bytes: int = 0
    archived_bytes: int = 0
    archived_images: int = 0
    saved_by_deletion_per_month: float = 0.0
    saved_by_archive_per_month: float = 0.0
    archive_cost_per_month: float = 0.0
    minimum_charges: float = 0.0
    minimum_still_due: float = 0.0

    @property
    def saved_per_month(self) -> float:
        return round(self.saved_by_deletion_per_month + self.saved_by_archive_per_month, 2)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "saved_per_month": self.saved_per_month}


def savings(repositories: QuerySet[Repository] | None = None, *, now: datetime) -> Savings:
    """The figures for ``repositories`` (every repository when None)."""
    repositories = repositories if repositories is not None else Repository.objects.all()
    standard: float = settings.CLEANUP_PRICE_PER_GB_MONTH
    archive: float = settings.CLEANUP_ARCHIVE_PRICE_PER_GB_MONTH
    reclaimed = repositories.aggregate(total=Sum("bytes_reclaimed"))["total"]
    result = Savings(deleted_bytes=int(reclaimed or 0))
    images = Image.objects.filter(repository__in=repositories, archived_by_console=True)
    archived = images.present().filter(storage_status=StorageStatus.ARCHIVED)
    totals = archived.aggregate(total=Sum("size_bytes"), images=Count("id"))
    result.archived_bytes = int(totals["total"] or 0)
    result.archived_images = int(totals["images"] or 0)
    result.saved_by_deletion_per_month = round(_gb(result.deleted_bytes) * standard, 2)
    result.saved_by_archive_per_month = round(_gb(result.archived_bytes) * (standard - archive), 2)
    result.archive_cost_per_month = round(_gb(result.archived_bytes) * archive, 2)
    recent = now - MINIMUM
    for size, archived_at in archived.filter(archived_at__gt=recent).values_list(
        "size_bytes", "archived_at"
    ):
        if archived_at is not None:
            result.minimum_still_due += minimum_charge(size, archived_at, now)
    ended = images.filter(archived_at__isnull=False).filter(
        Q(activated_at__gt=F("archived_at")) | Q(deleted_at__isnull=False)
    )
    for size, archived_at, activated_at, deleted_at in ended.values_list(
        "size_bytes", "archived_at", "activated_at", "deleted_at"
    ):
        if archived_at is None:
            continue
        left = activated_at if activated_at and activated_at > archived_at else deleted_at
        if left is not None:
            result.minimum_charges += minimum_charge(size, archived_at, left)
    result.minimum_still_due = round(result.minimum_still_due, 2)
    result.minimum_charges = round(result.minimum_charges, 2)
    return result
