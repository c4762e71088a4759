"""Sandbox data for the circuit breakers: in production and development a queue (with a
dead-letter queue), a function, an enabled SQS event source mapping, an alarm on the function's
errors, and the console's breaker on them (added through the breaker's own action)."""

from __future__ import annotations

from accounts.models import AwsAccount
from breaker import actions
from breaker.models import Breaker
from sandbox import aws
from scenarios.lambdas import QueueFunctionAlarm, queue_function_mapping_alarm

ACTOR = "sandbox"
FUNCTION = "orders-worker"
TARGETS = [(aws.PRODUCTION, "orders-production"), (aws.DEVELOPMENT, "orders-development")]


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
        breakers.append(
            actions.do_add_breaker(
                actor=ACTOR,
                name=name,
                account=AwsAccount.objects.get(account_id=account.account_id),
                region=aws.DEMO_REGION,
                function_name=created.function_name,
                alarms=[created.alarm_name],
            )
        )
    actions.do_reconcile(actor=ACTOR)  # read the alarms now, not at the worker's first tick
    return breakers
