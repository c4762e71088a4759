"""Every change of the cleanup app, one module per family (Zulip's ``zerver/actions`` layout):

- ``inventory``: repositories and images read from the registries (``do_sync_inventory``)
- ``policy``: opt-in tag, keep rules, protection, registry settings
- ``scheduling``: opening checks from events and requests (one open check per image)
- ``decide``: claiming due checks and judging them from one usage snapshot
- ``approvals``: approve and reject
- ``delete``: deleting approved images, everything judged again at that moment
- ``sweep``: checks for images no event names
- ``archive``: archive instead of delete, archive-then-delete, restores (``from cleanup.actions
  import archive``)

Each ``do_*`` writes its audit events in the transaction of the change and enqueues follow-up work
on commit. ``DeletionCheck`` owns the moves of one check (``finish``, ``mark_failed``,
``apply_verdict``...); ``cleanup.rules`` judges; ``cleanup.usage`` reads where images run.
Callers import from here: ``from cleanup import actions; actions.do_sweep(...)``.
"""

from cleanup.actions.approvals import do_approve_checks, do_reject_checks, enqueue_deletion
from cleanup.actions.common import WORKER, is_opted_in, opt_in_tag
from cleanup.actions.decide import (
    CLAIM_LEASE,
    DECIDE_BATCH,
    DecideResult,
    claim_due_checks,
    decide_claimed,
    do_run_due_checks,
)
from cleanup.actions.delete import do_delete_due, do_delete_images
from cleanup.actions.inventory import (
    SyncResult,
    do_sync_inventory,
    read_repository_state,
    sync_images,
)
from cleanup.actions.outcomes import DeleteResult
from cleanup.actions.policy import (
    POLICY_FIELDS,
    do_protect_images,
    do_save_registry_settings,
    do_set_opt_in,
    do_unprotect_image,
    do_update_policy,
)
from cleanup.actions.scheduling import (
    ScheduleOutcome,
    do_request_check,
    do_schedule_for_inactive_task_definitions,
    schedule_check,
)
from cleanup.actions.sweep import SweepResult, do_sweep

__all__ = [
    "CLAIM_LEASE",
    "DECIDE_BATCH",
    "POLICY_FIELDS",
    "WORKER",
    "DecideResult",
    "DeleteResult",
    "ScheduleOutcome",
    "SweepResult",
    "SyncResult",
    "claim_due_checks",
    "decide_claimed",
    "do_approve_checks",
    "do_delete_due",
    "do_delete_images",
    "do_protect_images",
    "do_reject_checks",
    "do_request_check",
    "do_run_due_checks",
    "do_save_registry_settings",
    "do_schedule_for_inactive_task_definitions",
    "do_set_opt_in",
    "do_sweep",
    "do_sync_inventory",
    "do_unprotect_image",
    "do_update_policy",
    "enqueue_deletion",
    "is_opted_in",
    "opt_in_tag",
    "read_repository_state",
    "schedule_check",
    "sync_images",
]
