"""Every change to a breaker, one module per concern:

- ``machine``: the state machine (alarms, back-off timer, gradual-close ramp, trip, reset,
  management) with one transition helper that writes the history row and the audit event
- ``probes``: one trial message at a time per breaker, and what its answer does
- ``mapping``: the event source mapping brought in line with the state, after the commit
- ``registration``: adding a breaker and changing its settings
- ``reconcile``: the recurring passes (reconcile and tick)

Callers import from here: ``from breaker import actions; actions.do_trip(...)``.
"""

from breaker.actions.machine import (
    WORKER,
    AlarmChange,
    do_advance_ramp,
    do_apply_alarm_state,
    do_end_backoff,
    do_reset,
    do_set_managed,
    do_trip,
)
from breaker.actions.mapping import converge_mapping
from breaker.actions.probes import claim_probe, do_probe, do_probe_now, enqueue_probe
from breaker.actions.reconcile import (
    TickReport,
    do_reconcile,
    do_run_due,
    do_tick,
    due_probe_ids,
    recovering_before,
)
from breaker.actions.registration import (
    SETTINGS_FIELDS,
    Discovery,
    DiscoveryError,
    discover_targets,
    do_add_breaker,
    do_update_settings,
)

__all__ = [
    "SETTINGS_FIELDS",
    "WORKER",
    "AlarmChange",
    "Discovery",
    "DiscoveryError",
    "TickReport",
    "claim_probe",
    "converge_mapping",
    "discover_targets",
    "do_add_breaker",
    "do_advance_ramp",
    "do_apply_alarm_state",
    "do_end_backoff",
    "do_probe",
    "do_probe_now",
    "do_reconcile",
    "do_reset",
    "do_run_due",
    "do_set_managed",
    "do_tick",
    "do_trip",
    "do_update_settings",
    "due_probe_ids",
    "enqueue_probe",
    "recovering_before",
]
