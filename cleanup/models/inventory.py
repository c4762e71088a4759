"""ECR as the console knows it: the registries' settings, repositories and images."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import AwsAccount

if TYPE_CHECKING:
    from cleanup.models.archive import ImageRestore
    from cleanup.models.checks import DeletionCheck

INDEX_MEDIA_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


# ECR's archival storage class charges at least 90 days for an archived image, whenever it is
# deleted or restored: archive-then-delete never deletes an archived image earlier.
MIN_ARCHIVE_DAYS = 90


def validate_archive_days(days: int | None) -> None:
    """The one rule for "archive, then delete after N days", used by the model, the policy form
    and ``manage.py cleanup set-action``: N is a whole number of days, at least 90."""
    if days is None or days < MIN_ARCHIVE_DAYS:
        given = "none given" if days is None else f"got {days}"
        raise ValidationError(
            f"archive-then-delete needs at least {MIN_ARCHIVE_DAYS} days in the archive (ECR "
            f"charges archived images for {MIN_ARCHIVE_DAYS} days at least); {given}",
            code="archive_days",
        )


class CleanupAction(models.TextChoices):
    """What executing an approved check does to the image."""

    DELETE = "delete", "Delete"
    ARCHIVE = "archive", "Archive (restorable)"
    ARCHIVE_THEN_DELETE = "archive_then_delete", "Archive, then delete after N days"


class StorageStatus(models.TextChoices):
    """ECR's ``imageStatus``: archived images cannot be pulled; a restore passes ACTIVATING."""

    ACTIVE = "ACTIVE", "standard"
    ARCHIVED = "ARCHIVED", "archived"
    ACTIVATING = "ACTIVATING", "restoring"


class RegistrySettings(models.Model):
    """Cleanup settings of one registry account (edited by admins)."""

    account = models.OneToOneField(
        AwsAccount, on_delete=models.CASCADE, related_name="cleanup_settings"
    )
    config_aggregator_name = models.CharField(
        "AWS Config aggregator",
        max_length=256,
        blank=True,
        help_text="Name of an aggregator in this account to ask as an extra usage source; empty: none.",
    )
    config_aggregator_region = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name_plural = "registry settings"

    def __str__(self) -> str:
        return f"cleanup settings of {self.account}"


class RepositoryQuerySet(models.QuerySet["Repository"]):
    def bytes_reclaimed(self) -> int:
        """The one figure of bytes the console deleted: each repository counts its own as it
        deletes (the dashboard, the CLI and /metrics all read this)."""
        return int(self.aggregate(total=models.Sum("bytes_reclaimed"))["total"] or 0)


class Repository(models.Model):
    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="repositories")
    region = models.CharField(max_length=32)
    name = models.CharField(max_length=256)
    arn = models.CharField("ARN", max_length=400)
    uri = models.CharField("URI", max_length=400)
    tag_mutability = models.CharField(max_length=32, default="MUTABLE")
    replication = models.JSONField(default=list, blank=True, help_text="Replication destinations.")
    opted_in = models.BooleanField(default=False, help_text="Mirrors the opt-in tag in ECR.")
    grace_period = models.DurationField(
        null=True, blank=True, help_text="Empty: CLEANUP_GRACE_PERIOD."
    )
    require_approval = models.BooleanField(
        null=True, blank=True, help_text="Empty: CLEANUP_REQUIRE_APPROVAL."
    )
    keep_newest = models.PositiveIntegerField(
        default=0, help_text="Always keep the newest N images."
    )
    keep_tag_pattern = models.CharField(
        max_length=200,
        blank=True,
        help_text="Keep images with a tag matching this regular expression.",
    )
    cleanup_action = models.CharField(
        max_length=24,
        choices=CleanupAction.choices,
        default=CleanupAction.DELETE,
        help_text="What an approved check does: delete, or move to ECR's archival storage class.",
    )
    archive_delete_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=f"Archive-then-delete: days in the archive before deletion (at least "
        f"{MIN_ARCHIVE_DAYS}).",
    )
    auto_restore = models.BooleanField(
        default=True,
        help_text="Restore an archived image by itself when a usage source references it again.",
    )
    bytes_reclaimed = models.BigIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Gone from ECR.")

    objects = RepositoryQuerySet.as_manager()

    # Not a column: set by the views for their templates (bytes of checks awaiting deletion).
    reclaimable: int

    class Meta:
        ordering = ["name", "region"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "region", "name"], name="cleanup_repository_unique"
            )
        ]
        permissions = [
            ("optin_repository", "Can opt a repository in or out of cleanup"),
            ("edit_policy_repository", "Can edit a repository's cleanup policy"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.account.account_id} {self.region})"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account.account_id, self.region, self.name)

    @property
    def effective_grace(self) -> timedelta:
        return self.grace_period if self.grace_period is not None else settings.CLEANUP_GRACE_PERIOD

    @property
    def approval_required(self) -> bool:
        if self.require_approval is not None:
            return self.require_approval
        return settings.CLEANUP_REQUIRE_APPROVAL

    def clean(self) -> None:
        if self.cleanup_action == CleanupAction.ARCHIVE_THEN_DELETE:
            try:
                validate_archive_days(self.archive_delete_after_days)
            except ValidationError as exc:
                raise ValidationError({"archive_delete_after_days": exc.messages}) from None

    @property
    def archives(self) -> bool:
        """Approved checks archive (the first step of archive-then-delete too)."""
        return self.cleanup_action != CleanupAction.DELETE

    @property
    def archive_period(self) -> timedelta | None:
        """Archive-then-delete: how long an image stays archived before deletion (never under
        the 90-day minimum, whatever the row says); None for the other actions."""
        if self.cleanup_action != CleanupAction.ARCHIVE_THEN_DELETE:
            return None
        return timedelta(
            days=max(self.archive_delete_after_days or MIN_ARCHIVE_DAYS, MIN_ARCHIVE_DAYS)
        )

    def archive_delete_due(self, archived_at: datetime | None) -> datetime | None:
        """When an image archived at ``archived_at`` may be deleted; None: never (not
        archive-then-delete, or not known to be archived)."""
        period = self.archive_period
        return archived_at + period if period is not None and archived_at is not None else None

    def matches_keep_pattern(self, tags: list[str]) -> str | None:
        """The first tag that the keep pattern protects, or None."""
        if not self.keep_tag_pattern:
            return None
        pattern = re.compile(self.keep_tag_pattern)
        return next((tag for tag in tags if pattern.fullmatch(tag)), None)


class ImageQuerySet(models.QuerySet["Image"]):
    def present(self) -> ImageQuerySet:
        return self.filter(deleted_at__isnull=True)


class Image(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="images")
    digest = models.CharField(max_length=80)
    tags = models.JSONField(default=list, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    media_type = models.CharField(max_length=120, blank=True)
    child_digests = models.JSONField(
        default=list, blank=True, help_text="Manifests of an image index."
    )
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time a source used it."
    )
    usage = models.JSONField(default=list, blank=True, help_text="Where it was last seen in use.")
    protected = models.BooleanField(default=False)
    protected_by = models.CharField(max_length=150, blank=True)
    protected_reason = models.TextField(blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by_console = models.BooleanField(default=False)
    storage_status = models.CharField(
        max_length=12,
        choices=StorageStatus.choices,
        default=StorageStatus.ACTIVE,
        help_text="ECR's imageStatus, read by the sync and by archive and restore.",
    )
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="ECR's lastArchivedAt (or when the console archived it)."
    )
    archived_by_console = models.BooleanField(default=False)
    activated_at = models.DateTimeField(
        null=True, blank=True, help_text="ECR's lastActivatedAt: last restored from the archive."
    )

    objects = ImageQuerySet.as_manager()

    # Not a column: set by the repository page for its template (the image's open check).
    open_check: DeletionCheck | None
    # Not a column: set by the repository page's archive section (the image's latest restore).
    latest_restore: ImageRestore | None

    class Meta:
        ordering = ["-pushed_at", "digest"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="cleanup_image_unique")
        ]
        indexes = [
            # The few images the console archived (savings, restores): found without a scan.
            models.Index(
                fields=["repository"],
                condition=models.Q(archived_by_console=True),
                name="cleanup_image_archived",
            )
        ]
        permissions = [
            ("protect_image", "Can protect an image from deletion"),
            ("restore_image", "Can restore an archived image"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}@{self.digest[:19]}"

    @property
    def is_archived(self) -> bool:
        return self.storage_status == StorageStatus.ARCHIVED

    @property
    def is_restoring(self) -> bool:
        return self.storage_status == StorageStatus.ACTIVATING

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def short_digest(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]

    @property
    def label(self) -> str:
        tags = ",".join(self.tags) if self.tags else "untagged"
        return f"{self.repository.name}:{tags}@{self.short_digest}"

    def last_use(self) -> datetime | None:
        """The later of the console's own sightings and ECR's last recorded pull."""
        times = [t for t in (self.last_used_at, self.last_pulled_at) if t is not None]
        return max(times) if times else None
