"""The watch pass (every minute, in the worker) and the watchdog (outside it).

Conditions that last rather than happen are looked at here, each notified once per occurrence
however many passes see it: a breaker half-open too long (keyed by the transition that made it
half-open), the day's digest of checks awaiting approval (keyed by the day), an account that
cannot be read and a silent worker (an ``Occurrence`` each, opened when first seen and closed when
gone). The pass also sends again the deliveries whose back-off is over.

A worker cannot report its own silence: ``manage.py notify watchdog``, run by cron or a scheduled
task beside the worker, asks the same question and sends from its own process.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from console import clock, health
from notify import actions
from notify.events import Event, EventType, link
from notify.models import Occurrence

RESEND_PER_PASS = 50
RESEND_BUDGET_SECONDS = 90


@dataclass
class WatchReport:
    notified: list[str] = field(default_factory=list)
    resent: int = 0


def do_watch(*, now: datetime | None = None) -> WatchReport:
    now = now or clock.now()
    report = WatchReport()
    actions.sync_environment_channels()
    for event in [*stuck_breakers(now), *unreadable_accounts(now), *silent_worker(now)]:
        if actions.do_notify(event, now=now):
            report.notified.append(event.key)
    report.notified += send_digest(now)
    # Sent here, one after the other, within a budget that keeps the pass below its task timeout
    # (a send waits at most Apprise's own timeouts); what is left waits for the next pass.
    started = time.monotonic()
    for delivery_id in actions.due_delivery_ids(now)[:RESEND_PER_PASS]:
        if time.monotonic() - started > RESEND_BUDGET_SECONDS:
            break
        if actions.do_send_delivery(delivery_id, now=now) is not None:
            report.resent += 1
    return report


def do_watchdog(*, now: datetime | None = None) -> list[str]:
    """The silent-worker check, sending from this process: the worker is the one that is down."""
    now = now or clock.now()
    notified = []
    for event in silent_worker(now):
        if actions.do_notify(event, now=now, inline=True):
            notified.append(event.key)
    return notified


def stuck_breakers(now: datetime) -> list[Event]:
    from breaker.models import Breaker

    events = []
    rows = Breaker.objects.filter(state=Breaker.State.HALF_OPEN).exclude(mode=Breaker.Mode.DISABLED)
    for breaker in rows.select_related("account"):
        entered = (
            breaker.transitions.filter(to_state=Breaker.State.HALF_OPEN)
            .order_by("-at", "-id")
            .first()
        )
        if entered is None or now - entered.at < settings.NOTIFY_STUCK_HALF_OPEN_AFTER:
            continue
        hours = (now - entered.at).total_seconds() / 3600
        events.append(
            Event(
                EventType.BREAKER_STUCK,
                key=f"stuck:{breaker.pk}:{entered.pk}",
                subject=f"Breaker {breaker.name} half-open for {hours:.1f} h",
                body=f"Breaker {breaker.name} in account {breaker.account.account_id} has been "
                f"half-open since {entered.at:%Y-%m-%d %H:%M} UTC: its probes neither pass "
                f"nor fail (an empty queue, or probes not running).\n{link(f'/breakers/{breaker.pk}/')}",
                account_id=breaker.account.account_id,
            )
        )
    return events


def _occurrences(kind: str, subjects: dict[str, Event], now: datetime) -> list[Event]:
    """Open an occurrence for each subject not already open (its event is returned to be sent,
    keyed by the occurrence) and close the open ones whose condition is gone."""
    Occurrence.objects.filter(kind=kind, ended_at__isnull=True).exclude(
        subject__in=list(subjects)
    ).update(ended_at=now)
    open_now = set(
        Occurrence.objects.filter(kind=kind, ended_at__isnull=True).values_list(
            "subject", flat=True
        )
    )
    events = []
    for subject, event in subjects.items():
        if subject in open_now:
            continue
        try:
            with transaction.atomic():
                occurrence = Occurrence.objects.create(kind=kind, subject=subject, started_at=now)
        except IntegrityError:
            continue  # another worker opened it in the same pass
        events.append(
            Event(
                event.type, f"{kind}:{occurrence.pk}", event.subject, event.body, event.account_id
            )
        )
    return events


def unreadable_accounts(now: datetime) -> list[Event]:
    from accounts.models import AwsAccount

    failing = {
        account.account_id: Event(
            EventType.ACCOUNT_UNREADABLE,
            key="",
            subject=f"Account {account.name} ({account.account_id}) cannot be read",
            body=f"The console cannot reach AWS account {account.name} ({account.account_id}): "
            f"{account.last_verification_error or 'verification failed'}\n{link('/accounts/')}",
            account_id=account.account_id,
        )
        for account in AwsAccount.objects.enabled().filter(last_verification_ok=False)
    }
    return _occurrences(EventType.ACCOUNT_UNREADABLE, failing, now)


def silent_worker(now: datetime) -> list[Event]:
    state = health.worker_health(now)
    silent = {}
    if state.silent:
        since = (
            f"since {state.last_beat:%Y-%m-%d %H:%M} UTC" if state.last_beat else "ever (no beat)"
        )
        silent["workers"] = Event(
            EventType.WORKER_SILENT,
            key="",
            subject="The console's worker is silent",
            body=f"No worker has beaten {since}: breakers, checks and deletions are not "
            f"being processed.\n{link('/healthz/worker')}",
        )
    return _occurrences(EventType.WORKER_SILENT, silent, now)


def send_digest(now: datetime) -> list[str]:
    """Once a day, from ``NOTIFY_DIGEST_HOUR`` on: each channel that wants it hears how many
    checks of its accounts await approval, with a link to the queue so filtered."""
    from cleanup.models import DeletionCheck

    local = timezone.localtime(now)
    if local.hour < settings.NOTIFY_DIGEST_HOUR:
        return []
    account = "image__repository__account__account_id"
    waiting = Counter(
        dict(
            DeletionCheck.objects.filter(status=DeletionCheck.Status.AWAITING_APPROVAL)
            .values_list(account)
            .annotate(n=Count("id"))
            .values_list(account, "n")
        )
    )
    if not waiting:
        return []
    key = f"digest:{local:%Y-%m-%d}"
    sent = []
    for channel in actions.channels_for(EventType.APPROVALS_WAITING, ""):
        if channel.all_accounts:
            counts = waiting
        else:
            mine = {account.account_id for account in channel.accounts.all()}
            counts = Counter({a: n for a, n in waiting.items() if a in mine})
        total = sum(counts.values())
        if not total:
            continue
        per_account = ", ".join(f"{account}: {n}" for account, n in sorted(counts.items()))
        event = Event(
            EventType.APPROVALS_WAITING,
            key=key,
            subject=f"{total} image deletion{'s' if total != 1 else ''} awaiting approval",
            body=f"{total} check{'s' if total != 1 else ''} await approval ({per_account}).\n"
            f"{link('/deletions/?status=awaiting_approval')}",
            failure=False,
        )
        if actions.deliver(channel, event, now) is not None:
            sent.append(f"{key}:{channel.pk}")
    return sent
