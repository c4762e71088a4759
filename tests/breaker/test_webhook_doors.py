"""Alarm state changes through the console's real doors: the EventBridge endpoint and SNS."""

from __future__ import annotations

from datetime import timedelta

from breaker.models import Breaker
from tests.breaker.conftest import NOW
from tests.breaker.events import eventbridge_alarm, sns_alarm
from tests.webhooks.signing import after_commit
from webhooks.models import InboundEvent

KEY = "breaker-test-key-0123456789"


def post_eventbridge(client, event: dict):
    with after_commit():
        return client.post(
            "/webhooks/eventbridge/",
            event,
            content_type="application/json",
            headers={"X-Api-Key": KEY},
        )


def test_an_eventbridge_alarm_event_opens_the_breaker_and_the_inbox_says_so(
    client, settings, breaker, function
):
    settings.WEBHOOK_API_KEYS = [KEY]

    response = post_eventbridge(
        client, eventbridge_alarm(function.alarm_arn, "ALARM", NOW, reason="Threshold Crossed: 12")
    )

    assert response.status_code == 202
    breaker.refresh_from_db()
    assert breaker.state == Breaker.State.OPEN
    assert function.mapping_state() == "Disabled"
    transition = breaker.transitions.get()
    assert (transition.actor, transition.reason) == ("webhook:eventbridge", "Threshold Crossed: 12")
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED
    assert "breaker opened" in event.note


def test_a_redelivered_eventbridge_event_is_a_duplicate_and_changes_nothing(
    client, settings, breaker, function
):
    settings.WEBHOOK_API_KEYS = [KEY]
    event = eventbridge_alarm(function.alarm_arn, "ALARM", NOW)
    post_eventbridge(client, event)

    again = post_eventbridge(client, event)

    assert again.status_code == 200
    assert breaker.transitions.count() == 1


def test_an_alarm_no_breaker_watches_is_ignored_in_the_inbox(client, settings, breaker, function):
    settings.WEBHOOK_API_KEYS = [KEY]
    stranger = function.alarm_arn.replace("orders-worker-errors", "someone-else")

    post_eventbridge(client, eventbridge_alarm(stranger, "ALARM", NOW))

    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.IGNORED
    assert "no breaker watches" in event.note


def test_sns_notifications_open_and_half_open_and_the_first_probe_follows_at_once(
    client, sns_signer, breaker, function
):
    sns_signer.post(client, sns_signer.notification(sns_alarm(function.alarm_arn, "ALARM", NOW)))
    assert function.mapping_state() == "Disabled"

    sns_signer.post(
        client,
        sns_signer.notification(
            sns_alarm(function.alarm_arn, "OK", NOW + timedelta(minutes=3), old="ALARM")
        ),
    )

    # The OK half-opens, and the probe enqueued on commit finds the queue empty: closed again.
    breaker.refresh_from_db()
    history = list(breaker.transitions.order_by("at", "id").values_list("to_state", "actor"))
    assert history == [("open", "webhook:sns"), ("half_open", "webhook:sns"), ("closed", "worker")]
    assert breaker.probes.get().outcome == "no_message"
    assert function.mapping_state() == "Enabled"
