"""No stuck work after an AWS fault, and no deletion nobody recorded.

Faults are injected where AWS would produce them: STS refusing to answer (the account's
credentials cannot be refreshed), throttling, and an answer lost after AWS acted. After AWS comes
back, every piece of work finishes through the recurring passes alone; nothing is deleted on
incomplete information, and nothing is done twice."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import botocore.client
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from accounts import aws as accounts_aws
from audit.models import AuditEvent
from cleanup import actions
from cleanup import aws as cleanup_aws
from cleanup.models import DeletionCheck, Repository
from tests.cleanup.conftest import NOW

LATER = NOW + timedelta(minutes=5)
MUCH_LATER = NOW + timedelta(hours=7)  # past every back-off


def awaiting_approval(world, repo: str = "web") -> tuple[str, DeletionCheck]:
    world.repository(repo)
    digest = world.push(repo, "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)
    actions.do_run_due_checks(now=NOW)
    return digest, DeletionCheck.objects.get(image__digest=digest, status="awaiting_approval")


@contextmanager
def sts_unreachable(monkeypatch):
    """Every AssumeRole fails to connect, as with STS down or its endpoint blocked. The cached
    credentials are dropped first, as when they expire."""
    real = botocore.client.BaseClient._make_api_call

    def call(self, operation, params):
        if operation == "AssumeRole":
            raise EndpointConnectionError(endpoint_url="https://sts.eu-west-1.amazonaws.com/")
        return real(self, operation, params)

    accounts_aws.clear_caches()
    with monkeypatch.context() as patch:
        patch.setattr(botocore.client.BaseClient, "_make_api_call", call)
        yield
    accounts_aws.clear_caches()


def test_an_approved_deletion_during_an_sts_outage_is_kept_unclaimed_and_finishes_after(
    world, monkeypatch
):
    digest, check = awaiting_approval(world)
    actions.do_approve_checks([check.pk], actor="oscar", now=NOW)

    with sts_unreachable(monkeypatch):
        result = actions.do_delete_images([check.pk], now=LATER)

    check.refresh_from_db()
    assert digest in world.ecr_digests("web")
    assert (check.status, check.claim) == ("approved", "")
    assert "EndpointConnectionError" in check.last_error or "Could not connect" in check.last_error
    assert result.failed == [check.pk] and result.deleted == []

    actions.do_delete_due(now=LATER + timedelta(seconds=10))  # back-off not over: nothing yet
    assert digest in world.ecr_digests("web")

    actions.do_delete_due(now=MUCH_LATER)  # AWS is back: the recurring pass finishes it

    check.refresh_from_db()
    assert check.status == "deleted"
    assert digest not in world.ecr_digests("web")
    assert AuditEvent.objects.filter(action="image.deleted", target_id=digest).count() == 1


def test_a_decision_during_throttling_fails_closed_and_is_decided_after(world, monkeypatch):
    world.repository("web")
    digest = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)
    real = cleanup_aws.list_active_task_definitions

    def throttled(account, region):
        raise cleanup_aws.CleanupAwsError(
            "ThrottlingException: Rate exceeded", code="ThrottlingException", retryable=True
        )

    monkeypatch.setattr(cleanup_aws, "list_active_task_definitions", throttled)
    actions.do_run_due_checks(now=NOW)
    check = DeletionCheck.objects.get(image__digest=digest)
    assert (check.status, check.claim) == ("failed", "")
    assert "ThrottlingException" in check.last_error

    monkeypatch.setattr(cleanup_aws, "list_active_task_definitions", real)
    actions.do_run_due_checks(now=MUCH_LATER)

    check.refresh_from_db()
    assert check.status == "awaiting_approval"
    assert digest in world.ecr_digests("web")


def test_a_decision_run_that_breaks_leaves_no_check_claimed(world, monkeypatch):
    world.repository("web")
    digest = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("cleanup.actions.decide.save_snapshot", broken)
    result = actions.do_run_due_checks(now=NOW)

    check = DeletionCheck.objects.get(image__digest=digest)
    assert (check.status, check.claim) == ("failed", "")
    assert "the database went away" in check.last_error
    assert result.errors == ["RuntimeError: the database went away"]


def test_a_deletion_whose_answer_was_lost_is_recorded_as_the_consoles(world, monkeypatch):
    digest, check = awaiting_approval(world)
    size = check.image.size_bytes
    actions.do_approve_checks([check.pk], actor="oscar", now=NOW)
    real = cleanup_aws.batch_delete_images

    def acted_then_timed_out(account, region, repository, digests):
        real(account, region, repository, digests)  # AWS deleted them...
        with accounts_aws.translated_errors(account.account_id, cleanup_aws.CleanupAwsError):
            raise ReadTimeoutError(endpoint_url="https://api.ecr.eu-west-1.amazonaws.com/")

    monkeypatch.setattr(cleanup_aws, "batch_delete_images", acted_then_timed_out)
    actions.do_delete_images([check.pk], now=LATER)  # ...and the answer never came

    check.refresh_from_db()
    assert digest not in world.ecr_digests("web")
    assert (check.status, check.claim) == ("approved", "")
    assert check.delete_attempted_at == LATER

    monkeypatch.setattr(cleanup_aws, "batch_delete_images", real)
    actions.do_delete_due(now=MUCH_LATER)

    check.refresh_from_db()
    assert check.status == "deleted"
    assert check.bytes_reclaimed == size
    assert Repository.objects.get(name="web").bytes_reclaimed == size
    deleted = AuditEvent.objects.get(action="image.deleted", target_id=digest)
    assert deleted.actor == "oscar"
    assert "confirmed by its absence" in deleted.details["how"]
    assert check.image.__class__.objects.get(pk=check.image_id).deleted_by_console is True


def test_an_image_that_vanished_without_a_deletion_call_is_not_counted_as_ours(world):
    digest, check = awaiting_approval(world)
    actions.do_approve_checks([check.pk], actor="oscar", now=NOW)
    ecr = accounts_aws.client(world.registry, "eu-west-1", "ecr")
    ecr.batch_delete_image(repositoryName="web", imageIds=[{"imageDigest": digest}])  # by hand

    actions.do_delete_images([check.pk], now=LATER)

    check.refresh_from_db()
    assert check.status == "cancelled"
    assert not AuditEvent.objects.filter(action="image.deleted").exists()


def test_a_sync_during_an_sts_outage_reports_it_and_forgets_nothing(world, monkeypatch):
    world.repository("web")
    digest = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)

    with sts_unreachable(monkeypatch):
        result = actions.do_sync_inventory(now=LATER)

    assert result.errors and "111111111111" in result.errors[0]
    web = Repository.objects.get(name="web")
    assert web.deleted_at is None and web.opted_in  # not read is not gone
    assert web.images.get(digest=digest).deleted_at is None
