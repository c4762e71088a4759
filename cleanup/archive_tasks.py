"""Thin django-q entry points of reversible cleanup (``cleanup.actions.archive``)."""

from cleanup.actions import archive
from cleanup.models import ImageRestore


def archive_pass() -> str:
    """Every few minutes: restores advanced, archived images used again restored, archived
    images of archive-then-delete repositories that stayed long enough judged for deletion."""
    result = archive.do_archive_pass()
    text = (
        f"restores looked at {result.advanced} (restored {result.restored}), "
        f"automatic restores {len(result.auto_restores)}, deletion checks {result.delete_checks}"
    )
    return text + ("; " + "; ".join(result.errors) if result.errors else "")


def advance_restore(restore_id: int) -> str:
    restore = ImageRestore.objects.filter(pk=restore_id).first()
    if restore is None:
        return f"restore {restore_id} is gone"
    restore = archive.do_advance_restore(restore)
    return f"restore {restore.pk}: {restore.status}"
