"""Append-only audit history. ``audit.record(...)`` is the one way to write it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from audit.models import AuditEvent


def record(
    actor: str,
    action: str,
    *,
    target_type: str = "",
    target_id: str | int = "",
    target_label: str = "",
    account_id: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Write one audit event. Call it inside the transaction of the change it describes, so the
    event exists exactly when the change does."""
    from audit.models import AuditEvent
    from console import clock

    return AuditEvent.objects.create(
        at=at or clock.now(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label[:200],
        account_id=account_id or "",
        details=details or {},
    )
