"""The inbox: every authentic event AWS sent, stored before anything else happens to it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.db import models
from django.db.models import Q

from console import backoff
from webhooks import registry

MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
# An event a worker claimed and did not finish (the worker died) is due again after this, and
# taken by the next drain within seconds (``actions.do_resume_stalled``): the work of a dead
# worker resumes within a minute. A handler runs in well under a second (a drain renews the lease
# of a slow batch), and handlers are idempotent, so a late second run changes nothing.
PROCESSING_LEASE = timedelta(seconds=30)


class InboundEventQuerySet(models.QuerySet["InboundEvent"]):
    def pending(self, now: datetime) -> InboundEventQuerySet:
        """Events still owed processing: received (first time or retry) or abandoned mid-way."""
        return self.filter(
            Q(status=InboundEvent.Status.RECEIVED)
            | Q(status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - PROCESSING_LEASE)
        )

    def due(self, now: datetime) -> InboundEventQuerySet:
        """Pending events whose retry back-off, if any, has ended."""
        return self.pending(now).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )


class InboundEvent(models.Model):
    class Source(models.TextChoices):
        EVENTBRIDGE = "eventbridge", "EventBridge"
        SNS = "sns", "SNS"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    source = models.CharField(max_length=16, choices=Source.choices)
    dedupe_key = models.CharField(
        max_length=255, unique=True, help_text="EventBridge event id or SNS MessageId."
    )
    kind = models.CharField(max_length=40, choices=registry.KINDS, default=registry.OTHER)
    raw_body = models.TextField(help_text="The request body exactly as received.")
    received_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    note = models.TextField(blank=True, help_text="What the handler did, or why it was ignored.")
    error = models.TextField(blank=True, help_text="The last handler error.")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, help_text="The drain that holds it.")
    request_id = models.CharField(
        max_length=64, blank=True, help_text="The request that delivered it (for the logs)."
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    history = models.JSONField(default=list, blank=True, help_text="Timeline of what happened.")
    # Read from the message when it is stored, for filtering and display.
    message_type = models.CharField(max_length=40, blank=True, help_text="SNS message type.")
    topic_arn = models.CharField(max_length=300, blank=True)
    account_id = models.CharField(max_length=12, blank=True)
    detail_type = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=300, blank=True)

    objects = InboundEventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [("reprocess_inboundevent", "Can re-process a failed inbound event")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhooks_pending_idx")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.dedupe_key}"

    @property
    def actor(self) -> str:
        return f"webhook:{self.source}"

    @cached_property
    def envelope(self) -> dict[str, Any]:
        """The body as parsed JSON (the EventBridge event, or the SNS message envelope)."""
        envelope: dict[str, Any] = json.loads(self.raw_body)  # both doors store JSON objects only
        return envelope

    @cached_property
    def payload(self) -> Any:
        """What handlers get: the EventBridge event; for an SNS notification its ``Message``,
        parsed when it is JSON (a CloudWatch alarm notification or an EventBridge event)."""
        envelope = self.envelope
        if self.source == self.Source.SNS and envelope.get("Type") == "Notification":
            return parse_sns_message(envelope.get("Message", ""))
        return envelope

    @property
    def pretty_body(self) -> str:
        try:
            body = self.envelope
        except ValueError:
            return self.raw_body
        if self.source == self.Source.SNS and isinstance(body.get("Message"), str):
            message = parse_sns_message(body["Message"])
            if not isinstance(message, str):
                body = {**body, "Message": message}
        return json.dumps(body, indent=2, sort_keys=False, ensure_ascii=False)

    @property
    def is_pending(self) -> bool:
        return self.status in {self.Status.RECEIVED, self.Status.PROCESSING}

    def backoff_after(self, attempts: int) -> timedelta:
        """Delay before the next attempt once ``attempts`` attempts have failed."""
        return backoff.after_failures(attempts, base=BACKOFF_BASE, cap=BACKOFF_CAP)

    def add_history(self, at: datetime, what: str, text: str = "") -> None:
        self.history = [*self.history, {"at": at.isoformat(), "what": what, "text": text}]


def parse_sns_message(message: str) -> Any:
    """The notification's ``Message`` as a dict when it is a JSON object the console can store,
    else the text as it is (too deep, a NUL or a lone surrogate inside: read as plain text)."""
    from webhooks import payload

    if payload.too_deep(message):
        return message
    try:
        parsed = json.loads(message)
    except ValueError:
        return message
    if not isinstance(parsed, dict) or payload.unstorable_string(parsed):
        return message
    return parsed


class DrainRequest(models.Model):
    """One row: whether a drain of the inbox is asked for and not started yet. Events other than
    alarms do not get a task each (a burst of thousands would queue thousands of tasks, and every
    alarm behind them): the first event of a burst asks for a drain, the others find it asked."""

    requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"inbox drain requested at {self.requested_at}" if self.requested_at else "idle"
