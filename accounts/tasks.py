"""Worker entry points (django-q): thin, they call actions."""

from __future__ import annotations

from accounts import organizations


def sync_organization() -> str:
    """Every 15 minutes: follow the connected organization (nothing when none is)."""
    return str(organizations.do_sync_organization())
