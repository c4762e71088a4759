"""The SNS HTTP(S) subscription door: nothing is stored unless SNS provably sent it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests

from audit.models import AuditEvent
from console import clock
from tests.webhooks import shapes
from tests.webhooks.signing import key_pair
from webhooks import registry, sns
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, 'ALARM: "orders-errors" in EU (Ireland)'])
def test_it_accepts_signed_notifications_of_both_signature_versions(
    client, sns_signer, handled, version, subject
):
    message = sns_signer.notification(shapes.alarm_notification(), subject=subject, version=version)

    response = sns_signer.post(client, message)

    assert response.status_code == 202
    stored = InboundEvent.objects.get()
    assert response.json() == {"status": "accepted", "id": stored.pk}
    assert stored.source == "sns"
    assert stored.dedupe_key == message["MessageId"]
    assert stored.kind == registry.ALARM_STATE_CHANGE
    assert stored.topic_arn == sns_signer.topic_arn
    assert stored.account_id == shapes.ACCOUNT
    assert json.loads(stored.raw_body) == message
    assert stored.actor == "webhook:sns"
    assert handled.calls == [(stored.pk, registry.ALARM_STATE_CHANGE, shapes.alarm_notification())]


def test_an_eventbridge_event_through_sns_is_classified_like_at_the_eventbridge_door(
    client, sns_signer, handled
):
    event = shapes.deregistration_event()

    sns_signer.post(client, sns_signer.notification(event))

    stored = InboundEvent.objects.get()
    assert stored.kind == registry.TASK_DEFINITION_DEREGISTERED
    assert stored.payload == event
    assert stored.detail_type == "AWS API Call via CloudTrail"


def test_a_plain_text_notification_is_stored_as_other_with_the_text_as_payload(
    client, sns_signer, handled
):
    sns_signer.post(client, sns_signer.notification("hello from a human", subject="hi"))

    stored = InboundEvent.objects.get()
    assert stored.kind == registry.OTHER
    assert stored.payload == "hello from a human"


def test_the_certificate_is_fetched_once_and_cached(client, sns_signer):
    for _ in range(3):
        assert (
            sns_signer.post(
                client, sns_signer.notification(shapes.alarm_notification())
            ).status_code
            == 202
        )

    assert sns_signer.fetched == [sns_signer.cert_url]


def test_a_redelivered_notification_is_a_duplicate(client, sns_signer, handled):
    message = sns_signer.notification(shapes.alarm_notification())

    answers = [sns_signer.post(client, message).status_code for _ in range(3)]

    assert answers == [202, 200, 200]
    assert InboundEvent.objects.count() == 1
    assert len(handled.calls) == 1


def tampered_message(signer):
    message = signer.notification(shapes.alarm_notification())
    return {**message, "Message": message["Message"].replace('"ALARM"', '"ALARN"', 1)}


def signed_with_another_key(signer):
    other_key, _ = key_pair("impostor")
    return signer.sign(signer.notification(shapes.alarm_notification(), sign=False), key=other_key)


def with_cert_url(url):
    def build(signer):
        message = signer.notification(shapes.alarm_notification(), sign=False)
        return signer.sign({**message, "SigningCertURL": url})

    return build


def for_topic(topic):
    def build(signer):
        message = signer.notification(shapes.alarm_notification(), sign=False)
        return signer.sign({**message, "TopicArn": topic})

    return build


def sent_minutes_ago(minutes):
    def build(signer):
        return signer.notification(
            shapes.alarm_notification(), at=clock.now() - timedelta(minutes=minutes)
        )

    return build


def resigned_subject_removed(signer):
    """Signed with a Subject, delivered without it."""
    message = signer.notification(shapes.alarm_notification(), subject="ALARM")
    return {key: value for key, value in message.items() if key != "Subject"}


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (tampered_message, "signature does not match the message"),
        (signed_with_another_key, "signature does not match the message"),
        (resigned_subject_removed, "signature does not match the message"),
        (
            with_cert_url("http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.pem"),
            "SigningCertURL must use https",
        ),
        (
            with_cert_url("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0.txt"),
            "SigningCertURL must point to a .pem file",
        ),
        (
            with_cert_url("https://attacker.example.com/sns.eu-west-1.amazonaws.com.pem"),
            "not on an SNS host",
        ),
        (
            with_cert_url("https://sns.eu-west-1.amazonaws.com.attacker.example/x.pem"),
            "not on an SNS host",
        ),
        (with_cert_url("https://s3.eu-west-1.amazonaws.com/x.pem"), "not on an SNS host"),
        (for_topic("arn:aws:sns:eu-west-1:999999999999:someone-elses"), "is not in SNS_TOPIC_ARNS"),
        (sent_minutes_ago(61), "message is too old"),
        (sent_minutes_ago(-61), "is in the future"),
    ],
    ids=[
        "changed-byte",
        "wrong-key",
        "subject-dropped",
        "http-cert-url",
        "not-pem",
        "other-host",
        "lookalike-host",
        "non-sns-aws-host",
        "disallowed-topic",
        "stale-timestamp",
        "future-timestamp",
    ],
)
def test_it_refuses_unverifiable_messages_with_403_and_stores_nothing(
    client, sns_signer, handled, build, error
):
    response = sns_signer.post(client, build(sns_signer))

    assert response.status_code == 403
    assert error in response.json()["error"]
    assert not InboundEvent.objects.exists()
    assert handled.calls == []


def test_a_message_for_a_disallowed_topic_makes_no_network_call(client, sns_signer):
    sns_signer.post(client, for_topic("arn:aws:sns:eu-west-1:999999999999:other")(sns_signer))

    assert sns_signer.fetched == []


def test_a_message_sent_59_minutes_ago_is_still_accepted(client, sns_signer):
    response = sns_signer.post(client, sent_minutes_ago(59)(sns_signer))

    assert response.status_code == 202


def test_an_unfetchable_certificate_answers_503_so_sns_retries(client, sns_signer, monkeypatch):
    def unreachable(url):
        raise requests.ConnectionError("connection refused")

    monkeypatch.setattr(sns, "fetch_certificate", unreachable)

    response = sns_signer.post(client, sns_signer.notification(shapes.alarm_notification()))

    assert response.status_code == 503
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not json", "body is not valid JSON"),
        ("[]", "body must be a JSON object"),
        (json.dumps({"Type": "Bogus"}), "Type must be one of"),
        (
            json.dumps({"Type": "Notification", "Message": "x"}),
            "missing or non-string field(s): MessageId",
        ),
    ],
)
def test_malformed_messages_get_400_naming_the_fault(client, sns_signer, body, error):
    response = client.post("/webhooks/sns/", body, content_type="text/plain")

    assert response.status_code == 400
    assert error in response.json()["error"]
    assert not InboundEvent.objects.exists()


def test_a_message_type_header_contradicting_the_body_is_refused(client, sns_signer):
    message = sns_signer.notification(shapes.alarm_notification())

    response = client.post(
        "/webhooks/sns/",
        json.dumps(message),
        content_type="text/plain",
        headers={"x-amz-sns-message-type": "SubscriptionConfirmation"},
    )

    assert response.status_code == 400
    assert not InboundEvent.objects.exists()


def test_an_sns_body_over_256_kib_gets_413(client, sns_signer):
    message = sns_signer.notification("x" * (300 * 1024))

    response = sns_signer.post(client, message)

    assert response.status_code == 413
    assert not InboundEvent.objects.exists()


def test_get_on_the_sns_endpoint_is_405(client):
    assert client.get("/webhooks/sns/").status_code == 405


def test_a_subscription_confirmation_for_an_allowed_topic_is_confirmed_and_recorded(
    client, sns_signer, monkeypatch
):
    visited = []
    monkeypatch.setattr(sns, "confirm_subscription", visited.append)
    message = sns_signer.subscription_confirmation(version="2")

    response = sns_signer.post(client, message)

    assert response.status_code == 202
    assert visited == [message["SubscribeURL"]]
    stored = InboundEvent.objects.get()
    assert (stored.kind, stored.status) == (registry.SUBSCRIPTION_CONFIRMATION, "processed")
    assert "confirmed" in stored.note
    confirmed = AuditEvent.objects.get(action="webhook.subscription_confirmed")
    assert (confirmed.actor, confirmed.target_id) == ("webhook:sns", sns_signer.topic_arn)


def test_the_confirmation_is_fetched_by_the_worker_not_inside_the_request(
    client, sns_signer, monkeypatch
):
    from django.test import TestCase

    visited = []
    monkeypatch.setattr(sns, "confirm_subscription", visited.append)
    message = sns_signer.subscription_confirmation()

    with TestCase.captureOnCommitCallbacks() as handed_off:
        response = client.post(
            "/webhooks/sns/",
            sns_signer.body(message),
            content_type="text/plain; charset=UTF-8",
            headers=sns_signer.headers(message),
        )

    assert response.status_code == 202
    assert visited == []  # answered before any request to AWS
    assert InboundEvent.objects.get().status == "received"
    for callback in handed_off:  # the processing task, as the worker runs it
        callback()
    assert visited == [message["SubscribeURL"]]
    assert InboundEvent.objects.get().status == "processed"


def test_a_subscription_confirmation_for_another_topic_is_not_confirmed(
    client, sns_signer, monkeypatch
):
    visited = []
    monkeypatch.setattr(sns, "confirm_subscription", visited.append)
    sns_signer.topic_arn = "arn:aws:sns:eu-west-1:999999999999:not-ours"

    response = sns_signer.post(client, sns_signer.subscription_confirmation())

    assert response.status_code == 403
    assert visited == []
    assert not InboundEvent.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_subscribe_url_off_sns_is_never_visited(client, sns_signer, monkeypatch):
    """The real confirm function checks the host before fetching; the attempt fails and retries."""
    fetched = []
    monkeypatch.setattr(requests, "get", lambda url, **kwargs: fetched.append(url))
    message = sns_signer.subscription_confirmation()
    message = sns_signer.sign(
        {**message, "SubscribeURL": "https://169.254.169.254/latest/meta-data/"}
    )

    response = sns_signer.post(client, message)

    assert response.status_code == 202
    stored = InboundEvent.objects.get()
    assert stored.status == "received"
    assert "SubscribeURL is not on an SNS host" in stored.error
    assert fetched == []
    assert not AuditEvent.objects.filter(action="webhook.subscription_confirmed").exists()


def test_a_failed_confirmation_is_retried_by_the_worker(client, sns_signer, monkeypatch):
    from webhooks import actions

    def down(url):
        raise requests.ConnectionError("sns unreachable")

    monkeypatch.setattr(sns, "confirm_subscription", down)
    sns_signer.post(client, sns_signer.subscription_confirmation())
    stored = InboundEvent.objects.get()
    assert (stored.status, stored.attempts) == ("received", 1)

    visited = []
    monkeypatch.setattr(sns, "confirm_subscription", visited.append)
    actions.do_process_pending(now=stored.next_attempt_at)

    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == ("processed", 2)
    assert len(visited) == 1
    assert AuditEvent.objects.filter(action="webhook.subscription_confirmed").count() == 1


def test_an_unsubscribe_confirmation_is_recorded_and_not_resubscribed(
    client, sns_signer, monkeypatch
):
    visited = []
    monkeypatch.setattr(sns, "confirm_subscription", visited.append)

    response = sns_signer.post(client, sns_signer.unsubscribe_confirmation())

    assert response.status_code == 202
    stored = InboundEvent.objects.get()
    assert stored.kind == registry.UNSUBSCRIBE_CONFIRMATION
    assert stored.status == "processed"
    assert "does not resubscribe" in stored.note
    assert visited == []
    assert (
        AuditEvent.objects.get(action="webhook.unsubscribe_received").target_id
        == sns_signer.topic_arn
    )
