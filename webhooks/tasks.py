"""Worker entry points (django-q)."""

from console import clock
from webhooks import actions
from webhooks.models import InboundEvent


def process_event(event_id: int) -> str | None:
    return actions.do_process_event(event_id)


def process_pending() -> str:
    """Every minute: events accepted while no worker ran, retries that are due, and events a dead
    worker held: handed to a drain (batches, shared by every worker), also when a drain was asked
    for and its task was lost."""
    if not InboundEvent.objects.due(clock.now()).exists():
        return "nothing due"
    actions.request_drain(force=True)
    return "drain requested"


def drain() -> dict[str, int]:
    """The inbox's events other than alarms, in batches (asked for by the first of a burst)."""
    return dict(actions.do_drain_inbox())
