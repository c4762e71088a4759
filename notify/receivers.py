"""The hook on the audit history: an audit event that notifies (``events.AUDIT_ACTIONS``) enqueues
a task once its transaction commits. Nothing else happens inside the action that wrote it, and
nothing here may fail it: no query, and any error is logged and swallowed."""

from __future__ import annotations

import logging
from typing import Any

from notify import later
from notify.events import AUDIT_ACTIONS

logger = logging.getLogger(__name__)


def audit_event_saved(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if not created or raw or instance.action not in AUDIT_ACTIONS:
        return
    try:
        later.on_commit(enqueue_audit_event, instance.pk)
    except Exception:
        logger.exception("audit event %s: notification not enqueued", instance.pk)


def enqueue_audit_event(audit_event_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "notify.tasks.notify_audit_event",
        audit_event_id,
        task_name=f"notify-audit-{audit_event_id}",
    )
