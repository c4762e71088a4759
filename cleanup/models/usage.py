"""What the usage sources answered (snapshots), and the caches shared by every worker."""

from __future__ import annotations

from typing import Any

from django.db import models


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
