"""Thin django-q entry points."""

from cleanup import actions


def sync_inventory() -> str:
    result = actions.do_sync_inventory()
    return f"{result.repositories} repositories, {result.images} images, {result.vanished} vanished"


def run_due_checks() -> str:
    result = actions.do_run_due_checks()
    return (
        ", ".join(f"{status}: {count}" for status, count in result.decided.items()) or "nothing due"
    )


def sweep() -> str:
    result = actions.do_sweep()
    if result.errors:
        return "sweep scheduled nothing: " + "; ".join(result.errors)
    return f"scheduled {len(result.scheduled)} checks ({result.bytes} bytes)"


def delete_approved(check_ids: list[int]) -> str:
    result = actions.do_delete_images(check_ids)
    return f"deleted {len(result.deleted)}, kept {len(result.kept)}, failed {len(result.failed)}"


def delete_due() -> str:
    """Every minute: approved deletions no run holds and whose retry is due."""
    result = actions.do_delete_due()
    return f"deleted {len(result.deleted)}, kept {len(result.kept)}, failed {len(result.failed)}"
