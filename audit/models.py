from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NoReturn

from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove audit history."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: they cannot be updated")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")

    def filtered(
        self,
        *,
        action: str = "",
        actor: str = "",
        account_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AuditEventQuerySet:
        rows = self
        if action:
            rows = rows.filter(action__startswith=action)
        if actor:
            rows = rows.filter(actor__icontains=actor)
        if account_id:
            rows = rows.filter(account_id=account_id)
        if since:
            rows = rows.filter(at__gte=since)
        if until:
            rows = rows.filter(at__lt=until)
        return rows


class AuditEvent(models.Model):
    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=200, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    account_id = models.CharField(max_length=12, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only: they cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("audit events are append-only: they cannot be deleted")

    @property
    def details_summary(self) -> str:
        """``key: value`` pairs for the history table (values as JSON, so types stay visible)."""
        return " · ".join(
            f"{key}: {json.dumps(value, default=str)}" for key, value in self.details.items()
        )
