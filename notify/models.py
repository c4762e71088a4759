"""Channels (where notifications go), deliveries (each notification sent, with its outcome) and
occurrences (a lasting condition, such as an unreadable account, notified once while it lasts)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models

from accounts.models import AwsAccount
from console import backoff
from notify import apprise_urls, secret
from notify.events import EVENT_LABELS

# A failed delivery is tried again after 1, 2, 4... minutes, at most an hour apart, and given up
# after MAX_ATTEMPTS (about a day of trying).
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 30
# A delivery being sent is leased: a worker that died mid-send leaves it to the next pass.
SEND_LEASE = timedelta(minutes=2)


class ChannelQuerySet(models.QuerySet["Channel"]):
    def enabled(self) -> ChannelQuerySet:
        return self.filter(enabled=True)


class Channel(models.Model):
    class Source(models.TextChoices):
        CONSOLE = "console", "console"
        ENVIRONMENT = "environment", "NOTIFY_URLS"

    name = models.CharField(max_length=100, unique=True)
    url_encrypted = models.TextField(editable=False)
    url_hint = models.CharField(
        max_length=120, editable=False, help_text="The service and scheme: all a page shows."
    )
    events = models.JSONField(default=list, blank=True)
    all_accounts = models.BooleanField(default=True)
    accounts = models.ManyToManyField(AwsAccount, blank=True, related_name="+")
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CONSOLE)
    fingerprint = models.CharField(
        max_length=64, blank=True, help_text="An environment channel's URL, hashed."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("test_channel", "Can send a test notification")]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=~models.Q(fingerprint=""),
                name="notify_one_channel_per_environment_url",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return secret.decrypt(self.url_encrypted)

    def set_url(self, url: str) -> list[str]:
        self.url_encrypted = secret.encrypt(url)
        self.url_hint = apprise_urls.describe(url)[:120]
        return ["url_encrypted", "url_hint"]

    @property
    def from_environment(self) -> bool:
        return self.source == self.Source.ENVIRONMENT

    @property
    def event_labels(self) -> list[str]:
        return [EVENT_LABELS.get(event, event) for event in self.events]

    def wants(self, event_type: str, account_id: str, account_ids: set[str]) -> bool:
        """Whether the channel hears about this event. ``account_ids`` are the account ids of its
        list (loaded by the caller); an event about no account reaches every channel of its type."""
        if not self.enabled or event_type not in self.events:
            return False
        return self.all_accounts or not account_id or account_id in account_ids


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        RETRYING = "retrying", "failed, will retry"
        GAVE_UP = "gave_up", "failed, gave up"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    key = models.CharField(max_length=200)
    account_id = models.CharField(max_length=12, blank=True)
    subject = models.CharField(max_length=250)
    body = models.TextField()
    failure = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["channel", "key"], name="notify_once_per_channel")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.channel_id}: {self.key} ({self.status})"

    @property
    def event_label(self) -> str:
        return EVENT_LABELS.get(self.event_type, self.event_type)

    @property
    def badge(self) -> str:
        return {"sent": "ok", "retrying": "warn", "gave_up": "bad"}.get(self.status, "")

    def mark_sent(self, now: datetime) -> list[str]:
        self.status = self.Status.SENT
        self.sent_at = now
        self.last_error = ""
        self.lease_until = self.next_attempt_at = None
        return ["status", "sent_at", "last_error", "lease_until", "next_attempt_at"]

    def mark_failed(self, now: datetime, error: str, *, final: bool = False) -> list[str]:
        """Another try later with back-off, or none after ``MAX_ATTEMPTS`` (or when ``final``)."""
        self.last_error = error[:2000]
        self.lease_until = None
        if final or self.attempts >= MAX_ATTEMPTS:
            self.status = self.Status.GAVE_UP
            self.next_attempt_at = None
        else:
            self.status = self.Status.RETRYING
            wait = backoff.after_failures(self.attempts, base=RETRY_BASE, cap=RETRY_CAP)
            self.next_attempt_at = now + wait
        return ["status", "last_error", "lease_until", "next_attempt_at"]


class Occurrence(models.Model):
    """A condition that lasts (an account that cannot be read, a silent worker): opened when the
    watch pass first sees it, closed when it is gone, notified once in between."""

    kind = models.CharField(max_length=40)
    subject = models.CharField(max_length=100)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=models.Q(ended_at__isnull=True),
                name="notify_one_open_occurrence",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} since {self.started_at:%Y-%m-%d %H:%M}"
