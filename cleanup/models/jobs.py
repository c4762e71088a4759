"""Work an operator started from a page and the worker does: approving every check that matches
the queue's filters (thousands of them) with its progress, for the page to show."""

from __future__ import annotations

from django.db import models


class BulkApproval(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    FINAL = ["finished", "failed"]

    actor = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    filters = models.JSONField(
        default=dict, help_text="The queue's filters, as the form cleaned them."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Checks that matched when asked.")
    total_bytes = models.BigIntegerField(default=0)
    done = models.PositiveIntegerField(default=0, help_text="Checks looked at so far.")
    approved = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="cleanup_bulk_status_idx")]

    def __str__(self) -> str:
        return f"bulk approval {self.pk} by {self.actor}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)
