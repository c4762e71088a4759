"""Probes: one message through the function, judged the way Lambda judges it."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from breaker import actions
from breaker.models import Breaker, Probe
from tests.breaker.conftest import NOW, REGION, half_open


def probe_at(breaker: Breaker, seconds: float) -> Probe | None:
    probe = actions.do_probe(breaker.pk, now=NOW + timedelta(seconds=seconds))
    breaker.refresh_from_db()
    return probe


def test_three_passing_probes_delete_three_messages_enable_the_mapping_and_close(breaker, function):
    half_open(breaker, function)
    for number in range(5):
        function.send(f"order-{number}")

    outcomes = [probe_at(breaker, seconds).outcome for seconds in (0, 30, 60)]

    assert outcomes == ["passed", "passed", "passed"]
    assert function.queued() == 2
    assert breaker.state == Breaker.State.CLOSED
    assert function.mapping_state() == "Enabled"
    assert breaker.probes.count() == 3
    assert breaker.transitions.first().reason == "3 probes passed"


def test_a_passing_probe_that_is_not_the_last_waits_the_probe_interval(breaker, function):
    half_open(breaker, function)
    function.send("order-1")

    probe_at(breaker, 0)

    assert breaker.state == Breaker.State.HALF_OPEN
    assert breaker.half_open_successes == 1
    assert breaker.next_probe_at == NOW + timedelta(seconds=30)
    assert probe_at(breaker, 10) is None  # not due yet


def failing_answers():
    return {
        "function error": dict(
            payload={"errorMessage": "boom", "errorType": "RuntimeError"},
            function_error="Unhandled",
        ),
        "batch item failure": dict(
            payload=lambda event: {
                "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
            }
        ),
        "timeout": dict(timeout=True),
        "unparsable batch answer": dict(payload=b"<html>not json</html>"),
    }


@pytest.mark.parametrize("answer", failing_answers().values(), ids=failing_answers().keys())
def test_a_failed_probe_leaves_the_message_and_opens_with_the_back_off(
    breaker, function, sqs_clock, answer
):
    half_open(breaker, function)
    function.send("order-1")
    function.answer_with(**answer)

    probe = probe_at(breaker, 0)

    assert probe.outcome == Probe.Outcome.FAILED
    assert probe.message_id
    assert probe.detail
    assert len(function.received) == 1  # one attempt: SDK retries are off for probes
    assert breaker.state == Breaker.State.OPEN
    assert breaker.next_probe_at == NOW + timedelta(seconds=60)
    assert breaker.transitions.first().cause == "probe"
    assert function.mapping_state() == "Disabled"
    # Still in the queue, hidden for the function's timeout (5 s) + 30 s, then visible again.
    assert (function.queued(), function.visible()) == (1, 0)
    sqs_clock(34)
    assert function.visible() == 0
    sqs_clock(2)
    assert function.visible() == 1


def test_consecutive_failures_double_the_back_off_up_to_the_cap(breaker, function, sqs_clock):
    half_open(breaker, function)
    function.send("order-1")
    waits = []
    at = 0
    for _ in range(6):
        function.answer_with(function_error="Handled")
        probe_at(breaker, at)
        wait = (breaker.next_probe_at - (NOW + timedelta(seconds=at))).total_seconds()
        waits.append(wait)
        at += wait
        sqs_clock(wait)  # the failed message is visible again
        assert not actions.do_end_backoff(breaker, now=NOW + timedelta(seconds=at - 1))
        assert actions.do_end_backoff(breaker, now=NOW + timedelta(seconds=at))
        breaker.refresh_from_db()
        assert breaker.state == Breaker.State.HALF_OPEN

    assert waits == [60, 120, 240, 480, 900, 900]


def test_back_off_does_not_end_while_the_alarm_is_in_alarm(breaker, function):
    half_open(breaker, function)
    function.send("order-1")
    function.answer_with(function_error="Unhandled")
    probe_at(breaker, 0)
    function.set_alarm("ALARM")

    actions.do_tick(now=NOW + timedelta(minutes=5))

    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN


def test_the_function_receives_the_record_lambda_would_have_built(breaker, function):
    half_open(breaker, function)
    message_id = function.send(
        '{"order": 1}',
        tenant={"DataType": "String", "StringValue": "acme"},
        blob={"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    )

    probe_at(breaker, 0)

    (event,) = function.received
    (record,) = event["Records"]
    assert record["messageId"] == message_id
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == function.queue_arn
    assert record["awsRegion"] == REGION
    assert record["body"] == '{"order": 1}'
    assert record["md5OfBody"] == hashlib.md5(b'{"order": 1}').hexdigest()
    assert record["md5OfMessageAttributes"]
    assert record["receiptHandle"]
    assert record["messageAttributes"]["tenant"] == {
        "stringValue": "acme",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert (
        record["messageAttributes"]["blob"]["binaryValue"]
        == base64.b64encode(b"\x00\x01\xff").decode()
    )
    assert record["messageAttributes"]["blob"]["dataType"] == "Binary"
    assert {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    } <= set(record["attributes"])


def test_a_record_without_message_attributes_has_no_attributes_md5(breaker, function):
    half_open(breaker, function)
    function.send("plain")

    probe_at(breaker, 0)

    record = function.received[0]["Records"][0]
    assert record["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in record


def test_an_empty_queue_closes_the_breaker_by_default(breaker, function):
    half_open(breaker, function)

    probe = probe_at(breaker, 0)

    assert probe.outcome == Probe.Outcome.NO_MESSAGE
    assert breaker.state == Breaker.State.CLOSED
    assert function.mapping_state() == "Enabled"
    assert function.received == []


def test_an_empty_queue_keeps_probing_when_set_so(breaker, function):
    actions.do_update_settings(breaker, actor="ada", close_when_queue_empty=False)
    half_open(breaker, function)

    probe = probe_at(breaker, 0)

    assert probe.outcome == Probe.Outcome.NO_MESSAGE
    assert breaker.state == Breaker.State.HALF_OPEN
    assert breaker.next_probe_at == NOW + timedelta(seconds=30)
    assert function.mapping_state() == "Disabled"


def test_a_probe_that_cannot_read_the_queue_never_closes_the_breaker(breaker, function):
    half_open(breaker, function)
    function.client("sqs").delete_queue(QueueUrl=function.queue_url)

    probe = probe_at(breaker, 0)

    assert probe.outcome == Probe.Outcome.ERROR
    assert "could not receive" in probe.detail
    assert breaker.state == Breaker.State.HALF_OPEN
    assert function.mapping_state() == "Disabled"


def test_a_success_answer_without_batch_failures_passes(breaker, function):
    half_open(breaker, function)
    function.send("order-1")
    function.answer_with({"batchItemFailures": []})

    assert probe_at(breaker, 0).outcome == Probe.Outcome.PASSED
    assert function.queued() == 0


def test_probes_are_stored_with_duration_and_audited(breaker, function):
    half_open(breaker, function)
    function.send("order-1")

    probe = probe_at(breaker, 0)

    assert probe.duration_ms >= 0
    assert probe.at == NOW
    from audit.models import AuditEvent

    assert AuditEvent.objects.get(action="breaker.probe").details["outcome"] == "passed"


def test_a_closed_or_tripped_breaker_is_never_probed(breaker, function):
    function.send("order-1")
    assert probe_at(breaker, 0) is None
    actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)
    assert probe_at(breaker, 0) is None
    assert breaker.probes.count() == 0


def test_a_probe_visibility_timeout_setting_replaces_the_default(breaker, function, sqs_clock):
    actions.do_update_settings(breaker, actor="ada", probe_visibility_timeout_seconds=100)
    half_open(breaker, function)
    function.send("order-1")
    function.answer_with(function_error="Unhandled")

    probe_at(breaker, 0)

    sqs_clock(99)
    assert function.visible() == 0
    sqs_clock(2)
    assert function.visible() == 1


def test_a_probe_visibility_timeout_must_exceed_the_functions_timeout(breaker):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="exceed the function's timeout"):
        actions.do_update_settings(breaker, actor="ada", probe_visibility_timeout_seconds=5)
    breaker.refresh_from_db()
    assert breaker.probe_visibility_timeout_seconds is None
