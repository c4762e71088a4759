"""ECR repositories and images of the registry accounts, and the checks that decide their deletion."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import AwsAccount
from console import backoff

if TYPE_CHECKING:
    from cleanup.rules import Verdict

INDEX_MEDIA_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


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

    objects = ImageQuerySet.as_manager()

    # Not a column: set by the repository page for its template (the image's open check).
    open_check: DeletionCheck | None

    class Meta:
        ordering = ["-pushed_at", "digest"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="cleanup_image_unique")
        ]
        permissions = [("protect_image", "Can protect an image from deletion")]

    def __str__(self) -> str:
        return f"{self.repository.name}@{self.digest[:19]}"

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


OPEN_STATUSES = ["scheduled", "running", "awaiting_approval", "approved", "failed"]


class DeletionCheck(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        IN_USE = "in_use", "In use (kept)"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        DELETED = "deleted", "Deleted"
        REJECTED = "rejected", "Rejected (kept)"
        FAILED = "failed", "Failed (will retry)"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        TASK_DEFINITION_INACTIVE = "task_definition_inactive", "Task definition became inactive"
        SWEEP = "sweep", "Sweep"
        MANUAL = "manual", "Manual"

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
        indexes = [models.Index(fields=["status", "due_at"], name="cleanup_check_due_idx")]
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


class UsageSnapshot(models.Model):
    """What every usage source answered at one moment, shared by the checks decided from it."""

    taken_at = models.DateTimeField(db_index=True)
    purpose = models.CharField(max_length=20)  # decide, delete, sweep
    complete = models.BooleanField()
    sources = models.JSONField(
        default=list, help_text="Per source, account and region: answered or error."
    )
    reference_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"usage snapshot {self.pk} at {self.taken_at:%Y-%m-%d %H:%M:%S}"

    def answers_by_source(self) -> list[dict[str, Any]]:
        """One row per source and account: regions answered, references found, regions where the
        service is not offered, and every error with its region (an account read in 30 regions
        would otherwise fill a page)."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for answer in self.sources:
            row = rows.setdefault(
                (answer["source"], answer["account_id"]),
                {
                    "source": answer["source"],
                    "account_id": answer["account_id"],
                    "answered": [],
                    "not_offered": [],
                    "errors": [],
                    "references": 0,
                },
            )
            if not answer.get("ok", True):
                row["errors"].append(f"{answer['region']}: {answer.get('error', '')}")
            elif answer.get("note"):
                row["not_offered"].append(answer["region"])
            else:
                row["answered"].append(answer["region"])
                row["references"] += answer.get("references", 0)
        return list(rows.values())

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [source for source in self.sources if not source.get("ok")]


class TaskDefinitionImages(models.Model):
    """Container images of a task definition revision. Revisions never change once registered,
    so every worker shares this cache and a warm run makes no DescribeTaskDefinition call."""

    arn = models.CharField(max_length=400, unique=True)
    images = models.JSONField(default=list)
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.arn


class FunctionVersionImage(models.Model):
    """The image of one Lambda function version. A published version never changes, so its
    qualified ARN is the key; ``$LATEST`` is keyed by its code hash and modification time too.
    Shared by every worker, so a warm snapshot makes no ``GetFunction`` call."""

    key = models.CharField(max_length=600, unique=True)
    image_uri = models.CharField(max_length=1024)
    resolved_uri = models.CharField(max_length=1024, blank=True)
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.key
