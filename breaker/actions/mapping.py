"""Bringing the event source mapping in line with the breaker's state.

Order matters. The state change is committed first and the AWS call comes after it (the wait for
``Disabled`` can take seconds and must not hold the database; an alarm handler runs inside the
inbox's transaction, so there the mapping is changed at once and the wait runs after the
commit). If the AWS call fails, the state is still right and the error is stored on the
breaker; the reconcile pass (every minute) sees the mapping disagree with the state and corrects
it. ``converge_mapping`` always moves the mapping toward the breaker's state *as it is now*,
re-read after each call, so an ALARM that lands while a close is enabling the mapping still ends
with the mapping disabled.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from django.db import transaction

import audit
from breaker import aws
from breaker.actions.machine import WORKER, locked, target
from breaker.aws import BreakerAwsError
from breaker.models import Breaker

logger = logging.getLogger(__name__)


class Unset:
    """A stored value the caller did not read (not the same as ``None``, "no limit")."""


UNSET = Unset()


def converge_mapping(
    breaker_id: int, now: datetime, *, attempts: int = 3, wait: bool = True
) -> str:
    """Enable the mapping of a closed (or ramping) breaker, disable it otherwise, with the
    maximum concurrency a gradual close wants; wait for the stable state, and store what AWS
    reports. Never raises for AWS errors: they are stored on the breaker.

    ``wait=False`` is for callers inside someone else's transaction (the inbox runs handlers in
    one): the change is made at once, the wait for the stable state runs after the commit, so
    the database is not held while Lambda finishes disabling."""
    error = ""
    state = ""
    for _ in range(attempts):
        breaker = Breaker.objects.select_related("account").get(pk=breaker_id)
        if not breaker.is_managed or breaker.broken:
            return breaker.mapping_state
        enabled = breaker.mapping_should_poll
        wanted = "Enabled" if enabled else "Disabled"
        concurrency = breaker.mapping_max_concurrency
        scaling: dict[str, int] | None = None
        try:
            if breaker.original_scaling is None and (
                breaker.gradual_close or breaker.scaling_wanted is not None
            ):
                breaker = _record_original_scaling(breaker)
            scaling = breaker.scaling_wanted
            extra = {} if scaling is None else {"scaling": scaling}
            mapping = aws.set_mapping_enabled(
                breaker.account, breaker.region, breaker.mapping_uuid, enabled, **extra
            )
            if wait:
                mapping = aws.wait_for_mapping(
                    breaker.account, breaker.region, breaker.mapping_uuid, wanted, first=mapping
                )
            state, error, concurrency = mapping.state, "", mapping.max_concurrency
        except BreakerAwsError as exc:
            if mapping_gone(exc, breaker, now):
                return ""
            logger.warning(
                "breaker %s: mapping %s not %s: %s", breaker.name, breaker.mapping_uuid, wanted, exc
            )
            error = f"{now:%Y-%m-%d %H:%M:%S} could not make the mapping {wanted}: {exc}"
            state = breaker.mapping_state
        store_mapping(breaker_id, state, error, now, concurrency=concurrency)
        if error:
            return state
        if scaling is not None and breaker.state == Breaker.State.CLOSED:
            # The original setting is back: forget it, so the next ramp records the mapping's
            # setting as it is then (someone may change it in between).
            Breaker.objects.filter(pk=breaker_id, state=Breaker.State.CLOSED).update(
                original_scaling=None
            )
        if not wait:
            transaction.on_commit(partial(_await_mapping, breaker_id, wanted, now))
            return state
        # The state may have changed while AWS was answering: go again if so.
        again = Breaker.objects.get(pk=breaker_id)
        if again.mapping_should_poll == enabled and again.scaling_wanted in (None, scaling):
            return state
    return state


def _record_original_scaling(breaker: Breaker) -> Breaker:
    """Before the console first changes a gradual-close breaker's mapping: what its
    ScalingConfig is (``{}``: none), to restore when the ramp ends. Recorded once; kept while a
    ramp is interrupted (the mapping then holds a step's limit, not the original)."""
    mapping = aws.get_mapping(breaker.account, breaker.region, breaker.mapping_uuid)
    if mapping is None:
        raise BreakerAwsError(
            f"event source mapping {breaker.mapping_uuid} does not exist",
            code="ResourceNotFoundException",
        )
    Breaker.objects.filter(pk=breaker.pk, original_scaling__isnull=True).update(
        original_scaling=mapping.scaling, mapping_max_concurrency=mapping.max_concurrency
    )
    return Breaker.objects.select_related("account").get(pk=breaker.pk)


def enqueue_convergence(breaker_id: int) -> None:
    """Hand the mapping change to the worker (a web request never waits on AWS)."""
    from django_q.tasks import async_task

    async_task("breaker.tasks.converge", breaker_id, group="breaker")


def _await_mapping(breaker_id: int, wanted: str, now: datetime) -> None:
    """After the commit of a change made without waiting: wait for the stable state, store it,
    and converge again if the breaker changed its mind meanwhile."""
    breaker = Breaker.objects.select_related("account").get(pk=breaker_id)
    try:
        mapping = aws.wait_for_mapping(
            breaker.account, breaker.region, breaker.mapping_uuid, wanted
        )
    except BreakerAwsError as exc:
        if not mapping_gone(exc, breaker, now):
            store_mapping(breaker_id, breaker.mapping_state, f"{now:%Y-%m-%d %H:%M:%S} {exc}", now)
        return
    store_mapping(breaker_id, mapping.state, "", now, concurrency=mapping.max_concurrency)
    if Breaker.objects.get(pk=breaker_id).mapping_should_poll != (wanted == "Enabled"):
        converge_mapping(breaker_id, now)


def store_mapping(
    breaker_id: int,
    state: str,
    error: str,
    now: datetime,
    *,
    concurrency: int | Unset | None = UNSET,
) -> None:
    fields: dict[str, object] = {
        "mapping_state": state,
        "mapping_error": error,
        "mapping_checked_at": now,
        "mapping_handed_off_at": None,
    }
    if not isinstance(concurrency, Unset):
        fields["mapping_max_concurrency"] = concurrency
    Breaker.objects.filter(pk=breaker_id).update(**fields)


def mapping_gone(exc: BreakerAwsError, breaker: Breaker, now: datetime) -> bool:
    if exc.code != "ResourceNotFoundException":
        return False
    mark_broken(breaker, now, f"event source mapping {breaker.mapping_uuid} no longer exists")
    return True


def mark_broken(breaker: Breaker, now: datetime, why: str) -> None:
    with transaction.atomic():
        row = locked(breaker.pk)
        if row.broken == why:
            return
        row.broken = why
        row.mapping_state = ""
        row.probe_lease_until = None
        row.save(update_fields=["broken", "mapping_state", "probe_lease_until"])
        audit.record(WORKER, "breaker.broken", details={"reason": why}, at=now, **target(row))
