"""Sandbox data for the circuit breakers: in production and development a queue (with a
dead-letter queue), a function, an enabled SQS event source mapping, an alarm on the function's
errors, and the console's breaker on them (added through the breaker's own action)."""

from __future__ import annotations

from typing import Any

from accounts.models import AwsAccount
from breaker import actions
from breaker.models import Breaker
from sandbox import aws
from scenarios.lambdas import QueueFunctionAlarm, queue_function_mapping_alarm

ACTOR = "sandbox"
FUNCTION = "orders-worker"
TARGETS = [(aws.PRODUCTION, "orders-production"), (aws.DEVELOPMENT, "orders-development")]
# Production closes gradually (issue 14): its mapping is limited to 50 at once by the team; after
# the probes pass the console enables it at 2, then 5, then 20, a minute each without ALARM, then
# gives it back its 50. Development closes at once.
GRADUAL: dict[str, dict[str, Any]] = {
    "orders-production": {"gradual_close": True, "ramp_step_seconds": 60}
}
PRODUCTION_CONCURRENCY = 50


def create_function(account_id: str, region: str = aws.DEMO_REGION) -> QueueFunctionAlarm:
    """Create the queue (with its dead-letter queue), function, mapping and alarm in the sandbox
    account, as a team would set them up."""
    return queue_function_mapping_alarm(
        aws.clients(account_id, region),
        FUNCTION,
        timeout=30,
        threshold=5,
        dead_letter_queue=True,
        visibility_timeout=60,
        alarm_description=f"Errors of {FUNCTION}: opens its circuit breaker",
        treat_missing_data="notBreaching",
    )


def seed() -> list[Breaker]:
    breakers = []
    for account, name in TARGETS:
        existing = Breaker.objects.filter(name=name).first()
        if existing is not None:  # `make demo` starts both moto and the database afresh
            breakers.append(existing)
            continue
        created = create_function(account.account_id)
        settings = GRADUAL.get(name, {})
        if settings:  # the team's own limit, which the ramp ends with
            aws.client(account.account_id, "lambda").update_event_source_mapping(
                UUID=created.mapping_uuid,
                ScalingConfig={"MaximumConcurrency": PRODUCTION_CONCURRENCY},
            )
        breakers.append(
            actions.do_add_breaker(
                actor=ACTOR,
                name=name,
                account=AwsAccount.objects.get(account_id=account.account_id),
                region=aws.DEMO_REGION,
                function_name=created.function_name,
                alarms=[created.alarm_name],
                **settings,
            )
        )
    actions.do_reconcile(actor=ACTOR)  # read the alarms now, not at the worker's first tick
    return breakers
