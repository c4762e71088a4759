"""django-q entry points: they take ids, load, and call an action."""

from __future__ import annotations

from audit.models import AuditEvent
from notify import actions, events, watch


def notify_audit_event(audit_event_id: int) -> int:
    event = events.from_audit(AuditEvent.objects.get(pk=audit_event_id))
    return 0 if event is None else len(actions.do_notify(event))


def send_delivery(delivery_id: int) -> str:
    delivery = actions.do_send_delivery(delivery_id)
    return "not due" if delivery is None else delivery.status


def watch_pass() -> str:
    report = watch.do_watch()
    return f"{len(report.notified)} notified, {report.resent} sent again"
