"""Connecting, editing and disconnecting the organization (admins: the page and the CLI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from accounts.models import Organization, OrganizationMember
from accounts.organizations.common import (
    SETTINGS_FIELDS,
    State,
    enqueue_sync,
    get_organization,
    org_target,
    settings_of,
)
from console import clock


def do_connect_organization(
    *, actor: str, now: datetime | None = None, **fields: Any
) -> Organization:
    """Connect the organization. Raises ``ValidationError`` (nothing written) on an invalid
    field, or when one is connected already (edit it instead)."""
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not a setting: {', '.join(sorted(unknown))}")
    if get_organization() is not None:
        raise ValidationError("An organization is connected already: edit or disconnect it.")
    fields.setdefault("regions", [settings.AWS_DEFAULT_REGION])
    now = now or clock.now()
    organization = Organization(
        id=Organization.ONE, connected_at=now, connected_by=actor[:150], **fields
    )
    organization.full_clean()
    with transaction.atomic():
        organization.save(force_insert=True)
        audit.record(
            actor,
            "organization.connected",
            details=settings_of(organization),
            at=now,
            **org_target(organization),
        )
        transaction.on_commit(enqueue_sync)
    return organization


def do_update_organization(organization: Organization, *, actor: str, **changes: Any) -> list[str]:
    """Change settings; returns the names that changed. The next pass applies a changed scope:
    accounts now out of it are marked gone, new ones registered."""
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not a setting: {', '.join(sorted(unknown))}")
    changed = [name for name, value in changes.items() if getattr(organization, name) != value]
    if not changed:
        return []
    before = settings_of(organization)
    for name in changed:
        setattr(organization, name, changes[name])
    try:
        organization.full_clean()
    except ValidationError:
        organization.refresh_from_db()
        raise
    after = settings_of(organization)
    with transaction.atomic():
        organization.save(update_fields=changed)
        audit.record(
            actor,
            "organization.updated",
            details={name: {"from": before[name], "to": after[name]} for name in changed},
            **org_target(organization),
        )
        transaction.on_commit(enqueue_sync)
    return changed


def do_disconnect_organization(organization: Organization, *, actor: str) -> int:
    """Stop following the organization. The accounts it registered stay as they are (enabled or
    not) and become the admins' to manage; returns how many there are."""
    kept = OrganizationMember.objects.exclude(state=State.GONE).count()
    with transaction.atomic():
        audit.record(
            actor,
            "organization.disconnected",
            details={**settings_of(organization), "accounts_kept": kept},
            **org_target(organization),
        )
        Organization.objects.filter(pk=organization.pk).delete()
    return kept
