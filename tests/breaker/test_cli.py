"""manage.py breaker: add | list | trip | reset | tick."""

from __future__ import annotations

import getpass
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from breaker.models import Breaker
from scenarios.lambdas import create_queue
from tests.breaker.conftest import ACCOUNT, REGION, build_function

ALARM = "orders-worker-errors"


def run(*args: str) -> str:
    out = StringIO()
    call_command("breaker", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_add_finds_the_functions_only_sqs_mapping(function):
    output = run(
        "add",
        "orders",
        "--account",
        ACCOUNT,
        "--region",
        REGION,
        "--function",
        function.function_name,
        "--alarm",
        function.alarm_arn,
        "--successes-to-close",
        "2",
        "--probe-interval",
        "15",
        "--backoff",
        "30",
        "--backoff-cap",
        "300",
    )

    breaker = Breaker.objects.get(name="orders")
    assert function.mapping_uuid in output
    assert breaker.mapping_uuid == function.mapping_uuid
    assert (
        breaker.successes_to_close,
        breaker.probe_interval_seconds,
        breaker.backoff_seconds,
        breaker.backoff_cap_seconds,
    ) == (2, 15, 30, 300)
    assert AuditEvent.objects.get(action="breaker.added").actor == f"cli:{getpass.getuser()}"


def test_add_with_two_sqs_mappings_wants_one_named_and_writes_nothing(function):
    _, arn = create_queue(function.client("sqs"), "second")
    function.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function.function_name
    )

    with pytest.raises(CommandError, match="has 2 SQS event source mappings; name one"):
        run(
            "add",
            "orders",
            "--account",
            ACCOUNT,
            "--region",
            REGION,
            "--function",
            function.function_name,
            "--alarm",
            "x",
        )
    assert not Breaker.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "--account",
                "999999999999",
                "--region",
                REGION,
                "--function",
                "orders-worker",
                "--alarm",
                ALARM,
            ],
            "not registered",
        ),
        (
            ["--account", ACCOUNT, "--region", REGION, "--function", "nope", "--alarm", ALARM],
            "No function nope",
        ),
        (
            [
                "--account",
                ACCOUNT,
                "--region",
                REGION,
                "--function",
                "orders-worker",
                "--alarm",
                ALARM,
                "--mapping",
                "00000000-0000-0000-0000-000000000000",
            ],
            "No event source mapping",
        ),
        (
            [
                "--account",
                ACCOUNT,
                "--region",
                REGION,
                "--function",
                "orders-worker",
                "--alarm",
                ALARM,
                "--backoff",
                "600",
                "--backoff-cap",
                "60",
            ],
            "cap cannot be below the back-off",
        ),
        (
            [
                "--account",
                ACCOUNT,
                "--region",
                REGION,
                "--function",
                "orders-worker",
                "--alarm",
                "no-such-alarm",
            ],
            "No alarm no-such-alarm in 222222222222 eu-west-1",
        ),
        (
            [
                "--account",
                ACCOUNT,
                "--region",
                "not-a-region",
                "--function",
                "orders-worker",
                "--alarm",
                ALARM,
            ],
            "region: Unknown AWS region",
        ),
        (
            [
                "--account",
                ACCOUNT,
                "--region",
                REGION,
                "--function",
                "orders-worker",
                "--alarm",
                ALARM,
                "--mapping",
                "not-a-uuid",
            ],
            "'not-a-uuid' is not an event source mapping UUID",
        ),
        (
            [
                "--account",
                "\u0662" * 12,
                "--region",
                REGION,
                "--function",
                "orders-worker",
                "--alarm",
                ALARM,
            ],
            "not registered",
        ),
    ],
    ids=[
        "unknown account",
        "unknown function",
        "unknown mapping",
        "cap below back-off",
        "alarm that does not exist",
        "unknown region",
        "mapping that is not a UUID",
        "account id in other digits",
    ],
)
def test_add_refuses_bad_input_precisely_and_writes_nothing(function, args, message):
    with pytest.raises(CommandError, match=message):
        run("add", "orders", *args)
    assert not Breaker.objects.exists()
    assert not AuditEvent.objects.filter(action="breaker.added").exists()


def test_add_a_mapping_of_another_function_is_refused(function, production):
    other = build_function(production, name="other-worker")
    with pytest.raises(CommandError, match="belongs to other-worker"):
        run(
            "add",
            "orders",
            "--account",
            ACCOUNT,
            "--region",
            REGION,
            "--function",
            "orders-worker",
            "--alarm",
            "a",
            "--mapping",
            other.mapping_uuid,
        )


def test_list_json_trip_and_reset(breaker, function):
    run("trip", "orders", "--reason", "bad deploy")
    listed = json.loads(run("list", "--json"))
    assert listed[0]["name"] == "orders"
    assert (listed[0]["state"], listed[0]["mode"], listed[0]["mapping_state"]) == (
        "open",
        "forced_open",
        "Disabled",
    )
    assert function.mapping_state() == "Disabled"

    run("reset", "orders")
    assert function.mapping_state() == "Enabled"
    assert "closed" in run("list")


def test_trip_and_reset_name_an_unknown_breaker(breaker):
    with pytest.raises(CommandError, match="no breaker named nope"):
        run("trip", "nope", "--reason", "x")
    with pytest.raises(CommandError, match="no breaker named nope"):
        run("reset", "nope")


def test_trip_requires_a_reason(breaker):
    with pytest.raises(CommandError):
        run("trip", "orders", "--reason", " ")
    breaker.refresh_from_db()
    assert breaker.state == "closed"


def test_tick_reconciles_and_probes(breaker, function):
    function.set_alarm("ALARM")
    output = run("tick")
    breaker.refresh_from_db()
    assert "reconciled 1" in output
    assert breaker.state == "open"


def test_add_with_a_gradual_close_stores_its_steps(function):
    run(
        "add",
        "orders",
        "--account",
        ACCOUNT,
        "--region",
        REGION,
        "--function",
        function.function_name,
        "--alarm",
        ALARM,
        "--gradual-close",
        "2,10,50",
        "--ramp-step",
        "120",
    )

    breaker = Breaker.objects.get(name="orders")
    assert (breaker.gradual_close, breaker.ramp_steps, breaker.ramp_step_seconds) == (
        True,
        [2, 10, 50],
        120,
    )


def test_add_refuses_ramp_steps_below_lambdas_minimum_and_adds_nothing(function):
    with pytest.raises(CommandError, match="from 2 to 1000"):
        run(
            "add",
            "orders",
            "--account",
            ACCOUNT,
            "--region",
            REGION,
            "--function",
            function.function_name,
            "--alarm",
            ALARM,
            "--gradual-close",
            "1,5",
        )

    assert not Breaker.objects.exists()
