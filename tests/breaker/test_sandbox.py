"""Sandbox data and the demo-only alarm button (make demo)."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from breaker.models import Breaker
from sandbox import aws as sandbox_aws
from sandbox import seed_accounts, seed_breakers
from tests.conftest import rows
from webhooks.models import InboundEvent


@pytest.fixture
def seeded(aws, db):
    seed_accounts.seed()
    return seed_breakers.seed()


def test_seed_puts_a_watched_function_in_production_and_development(seeded):
    assert sorted(b.account.account_id for b in seeded) == ["222222222222", "333333333333"]
    for breaker in seeded:
        mapping = sandbox_aws.client(breaker.account.account_id, "lambda").get_event_source_mapping(
            UUID=breaker.mapping_uuid
        )
        assert mapping["State"] == "Enabled"
        assert mapping["EventSourceArn"] == breaker.queue_arn
        alarms = sandbox_aws.client(breaker.account.account_id, "cloudwatch").describe_alarms(
            AlarmNames=breaker.alarms
        )
        assert alarms["MetricAlarms"][0]["MetricName"] == "Errors"
        assert breaker.state == Breaker.State.CLOSED
        breaker.refresh_from_db()
        assert [entry.get("state") for entry in breaker.alarm_states.values()] == ["OK"]


def test_seeding_twice_adds_no_second_breaker(seeded):
    again = seed_breakers.seed()

    assert [b.pk for b in again] == [b.pk for b in seeded]
    assert Breaker.objects.count() == 2


def test_the_demo_button_sets_the_alarm_and_the_inbox_opens_the_breaker(
    seeded, operator_client, settings, django_capture_on_commit_callbacks
):
    settings.SANDBOX = True
    breaker = seeded[0]

    page = operator_client.get(f"/breakers/{breaker.pk}/").content.decode()
    assert "Alarm → ALARM" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            f"/sandbox/breakers/{breaker.pk}/alarm/", {"state": "ALARM"}
        )

    breaker.refresh_from_db()
    assert response.status_code == 302
    assert breaker.state == Breaker.State.OPEN
    assert breaker.transitions.get().actor == "webhook:eventbridge"
    mapping = sandbox_aws.client(breaker.account.account_id, "lambda").get_event_source_mapping(
        UUID=breaker.mapping_uuid
    )
    assert mapping["State"] == "Disabled"


def test_the_demo_button_is_not_there_outside_the_sandbox(seeded, operator_client, settings):
    settings.SANDBOX = False
    breaker = seeded[0]

    assert "Alarm → ALARM" not in operator_client.get(f"/breakers/{breaker.pk}/").content.decode()
    assert (
        operator_client.post(
            f"/sandbox/breakers/{breaker.pk}/alarm/", {"state": "ALARM"}
        ).status_code
        == 404
    )


def test_a_viewer_cannot_press_the_demo_button(
    seeded, viewer_client, settings, django_capture_on_commit_callbacks
):
    settings.SANDBOX = True
    breaker = seeded[0]
    before = rows(Breaker, InboundEvent, AuditEvent)

    with django_capture_on_commit_callbacks(execute=True):
        response = viewer_client.post(f"/sandbox/breakers/{breaker.pk}/alarm/", {"state": "ALARM"})

    assert response.status_code == 403
    assert rows(Breaker, InboundEvent, AuditEvent) == before
    alarms = sandbox_aws.client(breaker.account.account_id, "cloudwatch").describe_alarms(
        AlarmNames=breaker.alarms
    )
    assert alarms["MetricAlarms"][0]["StateValue"] == "OK"
    mapping = sandbox_aws.client(breaker.account.account_id, "lambda").get_event_source_mapping(
        UUID=breaker.mapping_uuid
    )
    assert mapping["State"] == "Enabled"


def test_the_ok_button_leaves_work_for_the_probes_and_half_opens(
    seeded, operator_client, settings, django_capture_on_commit_callbacks
):
    settings.SANDBOX = True
    breaker = seeded[0]
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"/sandbox/breakers/{breaker.pk}/alarm/", {"state": "ALARM"})

    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"/sandbox/breakers/{breaker.pk}/alarm/", {"state": "OK"})

    breaker.refresh_from_db()
    # Half-open, and the first probe (enqueued on commit) passed with one of the demo messages.
    assert breaker.state == Breaker.State.HALF_OPEN
    assert breaker.probes.get().outcome == "passed"
    sqs = sandbox_aws.client(breaker.account.account_id, "sqs")
    count = sqs.get_queue_attributes(
        QueueUrl=breaker.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert count["Attributes"]["ApproximateNumberOfMessages"] == "2"


def test_the_production_breaker_closes_gradually_back_to_the_teams_limit(seeded):
    from datetime import timedelta

    from breaker import actions
    from console import clock

    production = next(b for b in seeded if b.name == "orders-production")
    lam = sandbox_aws.client(production.account.account_id, "lambda")
    cloudwatch = sandbox_aws.client(production.account.account_id, "cloudwatch")

    def limit() -> int | None:
        answer = lam.get_event_source_mapping(UUID=production.mapping_uuid)
        return (answer.get("ScalingConfig") or {}).get("MaximumConcurrency")

    assert (production.gradual_close, production.ramp_step_seconds, limit()) == (True, 60, 50)
    alarm = production.alarm_names[0]
    for state in ("ALARM", "OK"):
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue=state, StateReason="sandbox")
        actions.do_reconcile()
    start = clock.now()
    actions.do_probe(production.pk, now=start)  # the queue is empty: that closes, gradually
    production.refresh_from_db()
    assert (production.state, limit()) == ("ramping", 2)

    for minute in (1, 2, 3):
        actions.do_run_due(now=start + timedelta(minutes=minute))
    production.refresh_from_db()
    assert (production.state, limit()) == ("closed", 50)
