"""Restores of archived images: who or what asked, why, and how far ECR got (a restore passes
through ``ACTIVATING`` before the image can be pulled again)."""

from __future__ import annotations

from datetime import datetime

from django.db import models

from cleanup.models.inventory import Image


class ImageRestoreQuerySet(models.QuerySet["ImageRestore"]):
    def unfinished(self) -> ImageRestoreQuerySet:
        return self.filter(status__in=ImageRestore.UNFINISHED)


class ImageRestore(models.Model):
    """One request to move an image from ECR's archive back to standard storage."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        ACTIVATING = "activating", "Restoring (ECR: ACTIVATING)"
        RESTORED = "restored", "Restored"
        FAILED = "failed", "Failed"

    UNFINISHED = ["requested", "activating"]

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="restores")
    requested_at = models.DateTimeField()
    requested_by = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    automatic = models.BooleanField(
        default=False, help_text="Asked by the console itself: a usage source references it."
    )
    references = models.JSONField(
        default=list, blank=True, help_text="The references that asked for an automatic restore."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    attempts = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    objects = ImageRestoreQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["image"],
                condition=models.Q(status__in=["requested", "activating"]),
                name="cleanup_one_unfinished_restore_per_image",
            )
        ]
        indexes = [
            models.Index(fields=["automatic", "requested_at"], name="cleanup_restore_auto_idx")
        ]

    def __str__(self) -> str:
        return f"restore {self.pk} of {self.image}"

    @property
    def is_final(self) -> bool:
        return self.status not in self.UNFINISHED

    def finish(self, status: str, *, now: datetime, error: str = "") -> list[str]:
        self.status = status
        self.finished_at = now
        self.error = error
        return ["status", "finished_at", "error"]
