"""What a channel can hear about, and how each audit event becomes a notification.

Every notification has a key: a channel is sent each key at most once (``Delivery`` is unique on
channel and key), so an event noticed twice (a retried task, two workers in the same pass)
notifies once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from audit.models import AuditEvent


class EventType:
    BREAKER_OPENED = "breaker.opened"
    BREAKER_CLOSED = "breaker.closed"
    BREAKER_STUCK = "breaker.stuck_half_open"
    MAPPING_CHANGED = "breaker.mapping_changed"
    APPROVALS_WAITING = "cleanup.approvals_waiting"
    CLEANUP_FAILED = "cleanup.failed"
    ACCOUNT_UNREADABLE = "account.unreadable"
    WORKER_SILENT = "worker.silent"
    TEST = "test"


EVENT_CHOICES = [
    (EventType.BREAKER_OPENED, "A breaker opened (alarm, failed probe, or tripped by hand)"),
    (EventType.BREAKER_CLOSED, "A breaker closed (probes passed, or reset by hand)"),
    (EventType.BREAKER_STUCK, "A breaker stayed half-open too long (1 hour)"),
    (EventType.MAPPING_CHANGED, "A breaker's event source mapping was changed by hand"),
    (EventType.APPROVALS_WAITING, "Checks awaiting approval (one digest a day)"),
    (EventType.CLEANUP_FAILED, "A deletion or restore failed"),
    (EventType.ACCOUNT_UNREADABLE, "An AWS account cannot be read"),
    (EventType.WORKER_SILENT, "The worker stopped (no heartbeat)"),
]
EVENT_TYPES = [value for value, _ in EVENT_CHOICES]
EVENT_LABELS = {**dict(EVENT_CHOICES), EventType.TEST: "Test"}

# Audit actions that notify, and the event each one is. The breaker and cleanup apps record these
# in the transaction of the change (breaker/actions, cleanup/actions).
AUDIT_ACTIONS = {
    "breaker.opened": EventType.BREAKER_OPENED,
    "breaker.tripped": EventType.BREAKER_OPENED,
    "breaker.closed": EventType.BREAKER_CLOSED,
    "breaker.reset": EventType.BREAKER_CLOSED,
    "breaker.drift_corrected": EventType.MAPPING_CHANGED,
    "breaker.broken": EventType.MAPPING_CHANGED,
    "image.delete_failed": EventType.CLEANUP_FAILED,
    "image.restore_failed": EventType.CLEANUP_FAILED,
    "image.archive_failed": EventType.CLEANUP_FAILED,
    "organization.read_failed": EventType.ACCOUNT_UNREADABLE,
}


@dataclass(frozen=True)
class Event:
    type: str
    key: str
    subject: str
    body: str
    account_id: str = ""  # "" is about the console as a whole: every channel that wants the type
    failure: bool = True  # shown as a warning (else as news) where the service has the notion


def link(path: str) -> str:
    """A console page as a link in a message: absolute when ``NOTIFY_BASE_URL`` is set."""
    return f"{settings.NOTIFY_BASE_URL}{path}"


def from_audit(event: AuditEvent) -> Event | None:
    """The notification an audit event makes, or None when it makes none."""
    event_type = AUDIT_ACTIONS.get(event.action)
    if event_type is None:
        return None
    details = event.details or {}
    reason = str(details.get("reason") or "").strip()
    who = f" by {event.actor}" if not event.actor.startswith(("worker", "webhook")) else ""
    label = event.target_label or f"{event.target_type} {event.target_id}"
    where = f" in account {event.account_id}" if event.account_id else ""
    key = f"audit:{event.pk}"
    if event_type == EventType.CLEANUP_FAILED:
        # One message a day per image: a check retried with back-off fails again and again.
        what = event.action.removeprefix("image.").removesuffix("_failed")
        subject = f"Image {what} failed: {label}"
        body = f"{what.capitalize()} of {label}{where} failed"
        body += f": {details.get('code', '')} {reason}".rstrip() + "."
        if event.target_type == "deletion_check":
            body += f"\n{link(f'/checks/{event.target_id}/')}"
        key = f"{event.action}:{event.target_type}:{event.target_id}:{event.at:%Y-%m-%d}"
        return Event(event_type, key, subject, body)  # every channel: it concerns all accounts
    if event_type == EventType.ACCOUNT_UNREADABLE:  # the organization: no account is added or gone
        subject = "The AWS Organization cannot be read"
        body = (
            f"The console cannot list the organization's accounts: {details.get('error', '')}. "
            f"Nothing was added or marked gone; the next pass tries again.\n{link('/accounts/')}"
        )
        return Event(event_type, key, subject, body)  # every channel: it concerns all accounts
    page = link(f"/breakers/{event.target_id}/") if event.target_type == "breaker" else ""
    if event_type == EventType.BREAKER_OPENED:
        how = "tripped by hand" if event.action == "breaker.tripped" else "opened"
        subject = f"Breaker {label} {how}"
        body = f"Breaker {label}{where} {how}{who}: its queue is no longer read."
    elif event_type == EventType.BREAKER_CLOSED:
        how = "reset by hand" if event.action == "breaker.reset" else "closed"
        subject = f"Breaker {label} {how}"
        body = f"Breaker {label}{where} {how}{who}: its queue is read again."
    elif event.action == "breaker.broken":
        subject = f"Breaker {label}: its mapping is gone"
        body = f"Breaker {label}{where} cannot manage its event source mapping."
    else:
        subject = f"Breaker {label}: its mapping was changed by hand"
        body = f"The event source mapping of breaker {label}{where} was changed outside the console; the console put it back."
    if reason:
        body += f"\nReason: {reason}"
    if page:
        body += f"\n{page}"
    return Event(
        event_type,
        key,
        subject,
        body,
        event.account_id,
        failure=event_type != EventType.BREAKER_CLOSED,
    )
