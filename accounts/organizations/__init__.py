"""Accounts from AWS Organizations: connecting the organization, and the pass that follows it.

The pass (``accounts.tasks.sync_organization`` every 15 minutes; ``manage.py aws_organization
sync``) runs one at a time (a lease on the organization's row) and:

1. reads every account in scope (``aws.read_organization``). Any failure changes nothing but the
   organization's read status, shown on the pages and retried at the next pass: an account is
   never marked gone on a failed or partial read (fail closed);
2. registers each ACTIVE account it does not know, disabled, with the role the workload StackSet
   creates in it; an account that had gone and is back waits for its role again;
3. marks gone each account it registered that is closed (State SUSPENDED, PENDING_CLOSURE,
   CLOSED) or no longer in scope: disabled, as an admin's "Disable" does (cleanup no longer reads
   it, nothing verifies it), and its breakers no longer managed. Its rows and history stay;
4. verifies the accounts waiting for their role (``actions.do_verify_account``) and enables each
   one that answers; the others are tried again after a back-off.

Accounts registered by hand are never changed by the pass, even when the organization lists them.
Every change is an audit event.
"""

from accounts.organizations.common import (
    INTERVAL_MINUTES,
    SETTINGS_FIELDS,
    WORKER,
    enqueue_sync,
    get_organization,
)
from accounts.organizations.connect import (
    do_connect_organization,
    do_disconnect_organization,
    do_update_organization,
)
from accounts.organizations.sync import SyncResult, do_sync_organization

__all__ = [
    "INTERVAL_MINUTES",
    "SETTINGS_FIELDS",
    "WORKER",
    "SyncResult",
    "do_connect_organization",
    "do_disconnect_organization",
    "do_sync_organization",
    "do_update_organization",
    "enqueue_sync",
    "get_organization",
]
