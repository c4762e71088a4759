"""Channels and deliveries: every change to them, and the sending.

Nothing here runs inside the action that caused a notification: the audit receiver enqueues a
task on commit (``receivers``), and the worker turns the event into one ``Delivery`` per channel
that wants it and sends each in a task of its own. A failed send is recorded on its row and tried
again with back-off by the watch pass; the action that caused it never waits for, nor fails with,
a channel.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q

import audit
from accounts.models import AwsAccount
from console import clock
from notify import apprise_urls, later, secret, sending
from notify.events import EVENT_TYPES, Event, EventType
from notify.models import SEND_LEASE, Channel, Delivery

logger = logging.getLogger(__name__)
Status = Delivery.Status


def target(channel: Channel) -> dict[str, Any]:
    return {"target_type": "notify_channel", "target_id": channel.pk, "target_label": channel.name}


# --- Channels -----------------------------------------------------------------------------------


def do_save_channel(
    channel: Channel | None,
    *,
    actor: str,
    name: str,
    url: str,
    events: Iterable[str],
    all_accounts: bool,
    accounts: Iterable[AwsAccount],
    enabled: bool,
    now: datetime | None = None,
) -> Channel:
    """Add a channel (``channel`` None) or change one. ``url`` empty on a change keeps the saved
    URL. Raises ``ValidationError`` and writes nothing for bad input. The URL is never audited."""
    now = now or clock.now()
    events = [event for event in EVENT_TYPES if event in set(events)]
    accounts = list(accounts)
    if channel is not None and channel.from_environment:
        raise ValidationError("This channel comes from NOTIFY_URLS: change it there.")
    if not events:
        raise ValidationError({"events": "Choose at least one event."})
    if not all_accounts and not accounts:
        raise ValidationError({"accounts": "Choose the accounts, or all accounts."})
    if url or channel is None:
        try:
            url = apprise_urls.check(url)
        except apprise_urls.InvalidUrl as exc:
            raise ValidationError({"url": str(exc)}) from None
    name = name.strip()
    same_name = Channel.objects.filter(name__iexact=name)
    if channel is not None:
        same_name = same_name.exclude(pk=channel.pk)
    if same_name.exists():
        raise ValidationError({"name": "A channel with this name already exists."})
    adding = channel is None
    with transaction.atomic():
        row = (
            Channel() if channel is None else Channel.objects.select_for_update().get(pk=channel.pk)
        )
        before = _summary(row) if not adding else {}
        row.name, row.events, row.all_accounts, row.enabled = name, events, all_accounts, enabled
        if url:
            row.set_url(url)
        row.full_clean(exclude=["url_encrypted", "url_hint"])
        row.save()
        row.accounts.set([] if all_accounts else accounts)
        after = _summary(row)
        changes = {key: value for key, value in after.items() if before.get(key) != value}
        if url and not adding:
            changes["url"] = "changed"
        if adding or changes:
            audit.record(
                actor,
                "channel.added" if adding else "channel.changed",
                details=changes if not adding else after,
                at=now,
                **target(row),
            )
    return row


def _summary(channel: Channel) -> dict[str, Any]:
    """What the audit history says about a channel: everything but the URL (only its service)."""
    accounts: str | list[str] = "all"
    if not channel.all_accounts:
        accounts = sorted(channel.accounts.values_list("account_id", flat=True))
    return {
        "name": channel.name,
        "service": channel.url_hint,
        "events": channel.events,
        "accounts": accounts,
        "enabled": channel.enabled,
    }


def do_delete_channel(channel: Channel, *, actor: str, now: datetime | None = None) -> None:
    """Delete a console channel with its deliveries (the audit history keeps that it existed)."""
    if channel.from_environment:
        raise ValidationError("This channel comes from NOTIFY_URLS: remove it there.")
    with transaction.atomic():
        audit.record(actor, "channel.deleted", at=now or clock.now(), **target(channel))
        channel.delete()


def sync_environment_channels(urls: list[str] | None = None) -> None:
    """Mirror ``NOTIFY_URLS`` as channels (every event, every account), so their deliveries are
    recorded like any other. A URL gone from the environment leaves its channel disabled, with
    its history."""
    urls = settings.NOTIFY_URLS if urls is None else urls
    wanted = {secret.fingerprint(url): url for url in urls}
    present = dict(
        Channel.objects.filter(source=Channel.Source.ENVIRONMENT).values_list(
            "fingerprint", "enabled"
        )
    )
    if wanted.keys() == {fp for fp, enabled in present.items() if enabled}:
        return
    with transaction.atomic():
        Channel.objects.filter(source=Channel.Source.ENVIRONMENT, enabled=True).exclude(
            fingerprint__in=list(wanted)
        ).update(enabled=False)
        Channel.objects.filter(
            source=Channel.Source.ENVIRONMENT, enabled=False, fingerprint__in=list(wanted)
        ).update(enabled=True, events=EVENT_TYPES)
        for fp, url in wanted.items():
            if fp in present:
                continue
            row = Channel(
                name=f"NOTIFY_URLS {apprise_urls.describe(url).split(' (')[0]} {fp[:6]}",
                source=Channel.Source.ENVIRONMENT,
                fingerprint=fp,
                events=EVENT_TYPES,
                all_accounts=True,
            )
            row.set_url(url)
            try:
                with transaction.atomic():
                    row.save()
            except IntegrityError:
                pass  # another worker mirrored it first


# --- Notifying ----------------------------------------------------------------------------------


def channels_for(event_type: str, account_id: str) -> list[Channel]:
    channels = []
    for channel in Channel.objects.enabled().prefetch_related("accounts"):
        account_ids = {account.account_id for account in channel.accounts.all()}
        if channel.wants(event_type, account_id, account_ids):
            channels.append(channel)
    return channels


def do_notify(event: Event, *, now: datetime | None = None, inline: bool = False) -> list[int]:
    """One delivery of ``event`` per channel that wants it and has not had it (its key), each
    sent by a task of its own once committed, or here with ``inline`` (when the worker is the one
    that is silent). Returns the ids of the new deliveries."""
    now = now or clock.now()
    sync_environment_channels()
    created = [
        delivery.pk
        for channel in channels_for(event.type, event.account_id)
        if (delivery := deliver(channel, event, now, enqueue=not inline)) is not None
    ]
    if inline:
        for delivery_id in created:
            do_send_delivery(delivery_id, now=now)
    return created


def deliver(
    channel: Channel, event: Event, now: datetime, *, enqueue: bool = True
) -> Delivery | None:
    """The channel's delivery of ``event``, enqueued on commit; None if it had it already."""
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                channel=channel,
                event_type=event.type,
                key=event.key[:200],
                account_id=event.account_id,
                subject=event.subject[:250],
                body=event.body,
                failure=event.failure,
                created_at=now,
                next_attempt_at=now,
            )
    except IntegrityError:
        return None  # this channel had this event already
    if enqueue:
        later.on_commit(enqueue_send, delivery.pk)
    return delivery


def enqueue_send(delivery_id: int) -> None:
    from django_q.tasks import async_task

    async_task("notify.tasks.send_delivery", delivery_id, task_name=f"notify-{delivery_id}")


def do_send_test(channel: Channel, *, actor: str, now: datetime | None = None) -> Delivery:
    """A test message to one channel, whatever events it picked; sent by the worker like any."""
    now = now or clock.now()
    event = Event(
        EventType.TEST,
        key=f"test:{uuid.uuid4()}",
        subject="Test from the platform console",
        body=f"{actor} sent this test to channel {channel.name}. Notifications reach it.",
        failure=False,
    )
    with transaction.atomic():
        delivery = deliver(channel, event, now)
        assert delivery is not None  # a fresh key
        audit.record(actor, "channel.tested", at=now, **target(channel))
    return delivery


def do_send_delivery(delivery_id: int, *, now: datetime | None = None) -> Delivery | None:
    """Send one delivery if it is due: claimed with a conditional update (two workers never send
    it twice), sent through Apprise, the outcome recorded. None when it was not due."""
    now = now or clock.now()
    due = Q(status=Status.PENDING) | Q(status=Status.RETRYING, next_attempt_at__lte=now)
    lease_over = Q(status=Status.SENDING, lease_until__lt=now)
    claimed = Delivery.objects.filter(due | lease_over, pk=delivery_id).update(
        status=Status.SENDING, lease_until=now + SEND_LEASE, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("channel").get(pk=delivery_id)
    error = _send(delivery)
    if error is None:
        fields = delivery.mark_sent(now)
    else:
        fields = delivery.mark_failed(now, error, final=not delivery.channel.enabled)
    delivery.save(update_fields=fields)
    if error is not None:
        logger.warning(
            "notification %s to channel %s failed: %s", delivery.pk, delivery.channel, error
        )
    return delivery


def _send(delivery: Delivery) -> str | None:
    channel = delivery.channel
    if not channel.enabled:
        return "the channel is disabled"
    try:
        url = channel.url
    except secret.UndecryptableUrl as exc:
        return str(exc)
    return sending.send(url, title=delivery.subject, body=delivery.body, failure=delivery.failure)


def due_delivery_ids(now: datetime) -> list[int]:
    """Deliveries to send again: failed ones whose back-off ended, a send whose worker died (its
    lease is over), and pending ones older than a minute (their task was lost)."""
    return list(
        Delivery.objects.filter(
            Q(status=Status.RETRYING, next_attempt_at__lte=now)
            | Q(status=Status.SENDING, lease_until__lt=now)
            | Q(status=Status.PENDING, created_at__lt=now - SEND_LEASE / 2)
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:200]
    )
