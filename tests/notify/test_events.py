"""Each event reaches a channel (a local HTTP receiver through Apprise's json://) exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import audit
from accounts import actions as account_actions
from accounts import aws as accounts_aws
from breaker import actions as breaker_actions
from breaker import handlers
from cleanup.models import DeletionCheck, Image, Repository
from console import worker
from notify import tasks, watch
from notify.events import EventType
from notify.models import Delivery
from tests.breaker.conftest import NOW, half_open
from tests.breaker.events import eventbridge_alarm


def beat(now: datetime) -> None:
    """A worker alive at ``now``: the watch pass then sees no silence."""
    worker.beat("worker-host", 4242, None, now)


@pytest.fixture
def watch_at(django_capture_on_commit_callbacks):
    """One watch pass at ``now`` with a worker beating, its follow-up tasks run."""

    def run(now: datetime) -> None:
        beat(now)
        with django_capture_on_commit_callbacks(execute=True):
            watch.do_watch(now=now)

    return run


def alarm(function, state: str, when: datetime):
    return handlers.parse_alarm_change(eventbridge_alarm(function.alarm_arn, state, when))


def test_it_notifies_once_when_an_alarm_opens_a_breaker(
    breaker, function, channel, receiver, django_capture_on_commit_callbacks
):
    change = alarm(function, "ALARM", NOW)
    for _ in range(2):  # the same notification delivered twice
        with django_capture_on_commit_callbacks(execute=True):
            breaker_actions.do_apply_alarm_state(breaker, change, actor="webhook:sns", now=NOW)

    assert receiver.titles() == ["Breaker orders opened"]
    message = receiver.messages[0]
    assert "222222222222" in message["message"]
    assert "/breakers/" in message["message"]
    assert message["type"] == "failure"


def test_a_task_run_twice_for_one_event_notifies_once(
    breaker, function, channel, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)
    event = audit.models.AuditEvent.objects.get(action="breaker.tripped")

    tasks.notify_audit_event(event.pk)  # a redelivered task

    assert receiver.titles() == ["Breaker orders tripped by hand"]
    assert "by oscar" in receiver.messages[0]["message"]
    assert "maintenance" in receiver.messages[0]["message"]


def test_it_notifies_once_when_a_breaker_closes(
    breaker, function, channel, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)
        breaker_actions.do_reset(breaker, actor="oscar", now=NOW + timedelta(minutes=5))

    assert receiver.titles() == ["Breaker orders tripped by hand", "Breaker orders reset by hand"]
    assert receiver.messages[1]["type"] == "info"


def test_it_notifies_once_when_a_mapping_is_changed_by_hand(
    breaker, function, channel, receiver, django_capture_on_commit_callbacks
):
    breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)  # not committed
    function.set_mapping(True)

    with django_capture_on_commit_callbacks(execute=True):
        breaker_actions.do_reconcile(now=NOW + timedelta(minutes=1))
        breaker_actions.do_reconcile(now=NOW + timedelta(minutes=2))  # nothing drifted since

    assert receiver.titles() == ["Breaker orders: its mapping was changed by hand"]


def test_it_notifies_once_when_a_breaker_stays_half_open_over_an_hour(
    breaker, function, channel, receiver, watch_at
):
    half_open(breaker, function, at=NOW)
    for minutes in (59, 61, 62, 120):
        watch_at(NOW + timedelta(minutes=minutes))

    assert receiver.titles() == ["Breaker orders half-open for 1.0 h"]


def test_a_breaker_half_open_again_later_is_a_new_occurrence(
    breaker, function, channel, receiver, watch_at
):
    half_open(breaker, function, at=NOW)
    watch_at(NOW + timedelta(minutes=61))
    half_open(breaker, function, at=NOW + timedelta(hours=3))
    watch_at(NOW + timedelta(hours=4, minutes=1))

    assert receiver.titles() == ["Breaker orders half-open for 1.0 h"] * 2


DAY = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def awaiting_checks(make_account):
    account = make_account("333333333333", "uat")
    repository = Repository.objects.create(
        account=account,
        region="eu-west-1",
        name="web",
        arn="arn:aws:ecr:eu-west-1:333333333333:repository/web",
        uri="333333333333.dkr.ecr.eu-west-1.amazonaws.com/web",
    )
    for n in range(3):
        image = Image.objects.create(repository=repository, digest=f"sha256:{n:064d}")
        DeletionCheck.objects.create(
            image=image,
            status=DeletionCheck.Status.AWAITING_APPROVAL,
            trigger=DeletionCheck.Trigger.SWEEP,
            due_at=DAY,
            created_at=DAY,
            updated_at=DAY,
        )
    return account


def test_checks_awaiting_approval_make_one_digest_a_day_with_a_link_to_the_queue(
    awaiting_checks, channel, receiver, settings, watch_at
):
    settings.NOTIFY_BASE_URL = "https://console.example.com"
    for at in ("07:59", "08:00", "08:01", "15:00", "23:59"):
        watch_at(datetime.fromisoformat(f"2026-03-02T{at}:00+00:00"))

    assert receiver.titles() == ["3 image deletions awaiting approval"]
    message = receiver.messages[0]["message"]
    assert "https://console.example.com/deletions/?status=awaiting_approval" in message
    assert "333333333333: 3" in message

    watch_at(datetime.fromisoformat("2026-03-03T08:05:00+00:00"))
    assert len(receiver.titles()) == 2


def test_the_digest_counts_only_the_accounts_a_channel_covers(
    awaiting_checks, make_channel, receiver, make_account, watch_at
):
    other = make_account("444444444444", "dev")
    make_channel(receiver.url, name="dev-team", accounts=[other])
    watch_at(datetime.fromisoformat("2026-03-02T09:00:00+00:00"))

    assert receiver.titles() == []
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("action", ["image.delete_failed", "image.restore_failed"])
def test_a_failed_deletion_or_restore_notifies_once_a_day_per_image(
    action, channel, receiver, django_capture_on_commit_callbacks
):
    def fail(at: datetime) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            audit.record(
                "worker",
                action,
                target_type="deletion_check",
                target_id=7,
                target_label="web:v1",
                account_id="333333333333",
                details={"code": "AccessDenied", "reason": "not allowed"},
                at=at,
            )

    fail(DAY)
    fail(DAY + timedelta(hours=1))  # retried with back-off, failed again
    assert len(receiver.titles()) == 1
    assert "AccessDenied not allowed" in receiver.messages[0]["message"]
    assert "/checks/7/" in receiver.messages[0]["message"]

    fail(DAY + timedelta(days=1))
    assert len(receiver.titles()) == 2


def test_an_account_that_cannot_be_read_notifies_once_per_occurrence(
    make_account, channel, receiver, monkeypatch, watch_at
):
    account = make_account("555555555555", "payments")
    answers = {"id": None}

    def caller_account(account):
        if answers["id"] is None:
            raise accounts_aws.AwsError("AccessDenied: not authorized to assume the role")
        return answers["id"]

    monkeypatch.setattr(accounts_aws, "caller_account", caller_account)

    def verify_and_watch(at: datetime) -> None:
        account_actions.do_verify_account(account, actor="worker", now=at)
        watch_at(at)

    verify_and_watch(DAY)
    verify_and_watch(DAY + timedelta(minutes=1))
    assert receiver.titles() == ["Account payments (555555555555) cannot be read"]
    assert "AccessDenied" in receiver.messages[0]["message"]

    answers["id"] = "555555555555"  # the role is fixed
    verify_and_watch(DAY + timedelta(minutes=2))
    answers["id"] = None  # and broken again
    verify_and_watch(DAY + timedelta(minutes=3))
    assert len(receiver.titles()) == 2


def test_a_silent_worker_is_notified_once_by_the_watchdog(channel, receiver, watch_at):
    beat(DAY)

    assert watch.do_watchdog(now=DAY + timedelta(minutes=1)) == []  # still beating
    watch.do_watchdog(now=DAY + timedelta(minutes=5))
    watch.do_watchdog(now=DAY + timedelta(minutes=6))
    assert receiver.titles() == ["The console's worker is silent"]
    # Sent from the watchdog's own process: no worker needed.
    assert Delivery.objects.get().status == Delivery.Status.SENT

    watch_at(DAY + timedelta(minutes=7))  # back
    watch.do_watchdog(now=DAY + timedelta(minutes=20))  # silent again
    assert len(receiver.titles()) == 2


def test_a_channel_hears_only_its_events_and_accounts(
    breaker, function, make_channel, receiver, make_account, django_capture_on_commit_callbacks
):
    other = make_account("444444444444", "dev")
    make_channel(receiver.url, name="closes-only", events=[EventType.BREAKER_CLOSED])
    make_channel(receiver.url, name="dev-only", accounts=[other])

    with django_capture_on_commit_callbacks(execute=True):
        breaker_actions.do_trip(breaker, actor="oscar", reason="maintenance", now=NOW)

    assert receiver.titles() == []
    assert not Delivery.objects.exists()


def test_the_watch_pass_is_a_schedule_written_by_migrate(db):
    from django_q.models import Schedule

    row = Schedule.objects.get(name="notify.watch")  # the test database was built by migrate

    assert (row.func, row.schedule_type, row.minutes) == (
        "notify.tasks.watch_pass",
        Schedule.MINUTES,
        1,
    )


def test_an_organization_that_cannot_be_read_notifies_every_channel_once(
    channel, receiver, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        audit.record(  # as the organization pass records a failed read (once per failure)
            "worker",
            "organization.read_failed",
            target_type="organization",
            target_id="1",
            target_label="arn:aws:iam::111111111111:role/console-organizations",
            account_id="111111111111",
            details={"error": "AccessDenied: not authorized", "nothing_changed": True},
            at=DAY,
        )

    assert receiver.titles() == ["The AWS Organization cannot be read"]
    assert "AccessDenied" in receiver.messages[0]["message"]
    assert "Nothing was added or marked gone" in receiver.messages[0]["message"]
