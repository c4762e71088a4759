"""Deletion checks: one open check per image at most, and the moves of one check."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q

from cleanup.models.inventory import Image
from console import backoff

if TYPE_CHECKING:
    from cleanup.rules import Verdict

OPEN_STATUSES = ["scheduled", "running", "awaiting_approval", "approved", "failed"]


class DeletionCheck(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        IN_USE = "in_use", "In use (kept)"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        DELETED = "deleted", "Deleted"
        ARCHIVED = "archived", "Archived (restorable)"
        REJECTED = "rejected", "Rejected (kept)"
        FAILED = "failed", "Failed (will retry)"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        TASK_DEFINITION_INACTIVE = "task_definition_inactive", "Task definition became inactive"
        SWEEP = "sweep", "Sweep"
        MANUAL = "manual", "Manual"
        ARCHIVE_EXPIRED = "archive_expired", "Archived long enough (archive-then-delete)"

    OPEN = OPEN_STATUSES
    # Open, and no worker holds them: what opting out, protecting or a vanished image cancels.
    CANCELLABLE = ["scheduled", "failed", "awaiting_approval"]
    FAILURE_BACKOFF_BASE = timedelta(minutes=1)
    FAILURE_BACKOFF_CAP = timedelta(hours=6)

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="checks")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    trigger_ref = models.CharField(max_length=400, blank=True)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    evidence = models.JSONField(default=dict, blank=True)
    snapshot = models.ForeignKey("UsageSnapshot", null=True, blank=True, on_delete=models.SET_NULL)
    timeline = models.JSONField(default=list, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    approved_by = models.CharField(max_length=150, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claim = models.CharField(
        max_length=40,
        blank=True,
        help_text="Token of the decision or deletion run that holds the check (empty: none).",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    bytes_reclaimed = models.BigIntegerField(default=0)
    would_delete = models.BooleanField(default=False, help_text="A dry run would have deleted it.")
    delete_attempted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the console last called BatchDeleteImage for it: an image found gone "
        "after a call whose answer was lost was deleted by the console.",
    )

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["image"],
                condition=Q(status__in=OPEN_STATUSES),
                name="cleanup_one_open_check_per_image",
            )
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="cleanup_check_due_idx"),
            # The deletion queue's tabs and pages, newest change first; the weekly reclaimed sums.
            models.Index(fields=["status", "-updated_at", "-id"], name="cleanup_check_queue_idx"),
        ]
        permissions = [("approve_deletioncheck", "Can approve, reject or schedule deletion checks")]

    def __str__(self) -> str:
        return f"check {self.pk} of {self.image}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    def add_to_timeline(self, at: datetime, status: str, text: str = "", actor: str = "") -> None:
        """Append to the timeline (saved by the caller with ``timeline`` in update_fields)."""
        self.timeline = [
            *self.timeline,
            {"at": at.isoformat(), "status": status, "text": text, "actor": actor},
        ]

    # Transitions. Each sets the fields of one move, notes it on the timeline, and returns the
    # fields to save; the caller saves them and writes the audit event in its transaction.

    def finish(self, status: str, *, now: datetime, actor: str, reason: str) -> list[str]:
        """Close the check for good (kept in use, rejected, cancelled): who, when, why."""
        self.status = status
        self.decided_by, self.decided_at, self.decision_reason = actor, now, reason
        self.updated_at = now
        self.claim = ""
        self.add_to_timeline(now, status, reason, actor)
        return [
            "status",
            "decided_by",
            "decided_at",
            "decision_reason",
            "updated_at",
            "claim",
            "timeline",
        ]

    def mark_failed(self, *, now: datetime, error: str, actor: str, text: str = "") -> list[str]:
        """Something could not be read or done: keep the image, retry later with back-off."""
        self.attempts += 1
        self.status = self.Status.FAILED
        self.last_error = error
        self.due_at = now + backoff.after_failures(
            self.attempts, base=self.FAILURE_BACKOFF_BASE, cap=self.FAILURE_BACKOFF_CAP
        )
        self.claim = ""
        self.updated_at = now
        text = text or error
        self.add_to_timeline(
            now, self.Status.FAILED, f"{text} (retry at {self.due_at:%Y-%m-%d %H:%M:%S})", actor
        )
        return ["status", "attempts", "last_error", "due_at", "claim", "updated_at", "timeline"]

    def retry_deletion(self, *, now: datetime, error: str, actor: str) -> list[str]:
        """The deletion could not be done now (AWS did not answer): the approval stands, the
        error is recorded, and the recurring deletion pass tries again after the back-off."""
        self.attempts += 1
        self.last_error = error
        self.due_at = now + backoff.after_failures(
            self.attempts, base=self.FAILURE_BACKOFF_BASE, cap=self.FAILURE_BACKOFF_CAP
        )
        self.claim = ""
        self.updated_at = now
        self.add_to_timeline(
            now,
            self.Status.APPROVED,
            f"not deleted yet: {error} (retry at {self.due_at:%Y-%m-%d %H:%M:%S})",
            actor,
        )
        return ["attempts", "last_error", "due_at", "claim", "updated_at", "timeline"]

    def reschedule(self, *, due_at: datetime, now: datetime, actor: str, text: str) -> list[str]:
        self.status = self.Status.SCHEDULED
        self.due_at = due_at
        self.claim = ""
        self.updated_at = now
        self.add_to_timeline(now, self.Status.SCHEDULED, text, actor)
        return ["status", "due_at", "claim", "updated_at", "timeline"]

    def approve(self, *, now: datetime, actor: str) -> list[str]:
        self.status = self.Status.APPROVED
        self.approved_by = actor
        self.decided_by, self.decided_at, self.decision_reason = actor, now, "approved"
        self.updated_at = now
        self.add_to_timeline(now, self.Status.APPROVED, "approved", actor)
        return [
            "status",
            "approved_by",
            "decided_by",
            "decided_at",
            "decision_reason",
            "updated_at",
            "timeline",
        ]

    def apply_verdict(
        self, verdict: Verdict, *, now: datetime, actor: str, text: str = ""
    ) -> list[str]:
        """What a verdict of ``cleanup.rules`` does to the check, when it is decided and again at
        deletion time. An unused image waits for approval unless the repository needs none or an
        operator approved it already. ``text`` replaces the reason on the timeline."""
        from cleanup.rules import USED, Outcome

        text = text or verdict.reason
        if verdict.outcome == Outcome.UNKNOWN:
            return self.mark_failed(now=now, error=verdict.reason, actor=actor, text=text)
        if verdict.outcome == Outcome.TOO_RECENT:
            if verdict.retry_at is None:  # ``rules.judge`` always sets it for TOO_RECENT
                raise ValueError("a TOO_RECENT verdict without retry_at")
            return self.reschedule(due_at=verdict.retry_at, now=now, actor=actor, text=text)
        if verdict.outcome in (Outcome.UNUSED, Outcome.NEEDS_APPROVAL):
            self.last_error = ""
            self.claim = ""
            self.updated_at = now
            if self.image.repository.approval_required and not self.approved_by:
                self.status = self.Status.AWAITING_APPROVAL
                self.add_to_timeline(now, self.status, text, actor)
            else:
                self.status = self.Status.APPROVED
                why = (
                    f"approved earlier by {self.approved_by}"
                    if self.approved_by
                    else "the repository does not require approval"
                )
                self.add_to_timeline(now, self.status, f"{text}; {why}", actor)
            return ["status", "last_error", "claim", "updated_at", "timeline"]
        status = self.Status.IN_USE if verdict.outcome in USED else self.Status.CANCELLED
        fields = self.finish(status, now=now, actor=actor, reason=verdict.reason)
        if text != verdict.reason:
            self.timeline[-1]["text"] = text
        return fields
