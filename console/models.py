"""The worker's own rows: which clusters are alive, and when each recurring schedule last ran.

Both are written by the worker (``console.worker``) and read by ``/healthz/worker``, the
dashboard and ``/metrics`` (``console.health``): a handful of rows, read with one query each.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models

from console.schedules import Recurring


class WorkerHeartbeat(models.Model):
    """One row per running cluster (one ``manage.py qcluster``), beaten by its worker processes
    about every 30 s. Rows of clusters gone for a day are pruned when a worker starts."""

    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField(
        help_text="The cluster's process on that host (django-q's sentinel, the workers' parent)."
    )
    started_at = models.DateTimeField()
    last_beat = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "pid"], name="console_one_heartbeat_a_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


class ScheduleRun(models.Model):
    """When a registered schedule was first written, and when a worker last started its task."""

    name = models.CharField(max_length=100, unique=True)
    registered_at = models.DateTimeField(
        help_text="When the schedule was first written: its reference until it first runs."
    )
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    def due_at(self, recurring: Recurring) -> datetime:
        """When the next run was due. One that never ran: django-q fires a new interval
        schedule at the scheduler's first pass (its ``next_run`` starts at creation) and a new
        cron schedule at its first cron time after creation."""
        if self.last_run_at is not None:
            return recurring.next_after(self.last_run_at)
        if recurring.cron:
            return recurring.next_after(self.registered_at)
        return self.registered_at
