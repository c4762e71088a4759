"""The whole flow through its doors: event handler, run-due, approval, deletion."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from audit.models import AuditEvent
from cleanup import actions, handlers
from cleanup.models import DeletionCheck, Image, Repository
from tests.cleanup.conftest import NOW, PROD, cloudtrail_event, uri
from webhooks import registry


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr("console.clock.now", lambda: NOW)
    return NOW


def deliver(event: dict) -> str:
    return handlers.on_task_definition_deregistered(
        SimpleNamespace(payload=event, actor="webhook:eventbridge")
    )


def test_deregistering_the_last_user_leads_to_approval_then_deletion(
    world, frozen, operator_client, operator_user, django_capture_on_commit_callbacks
):
    world.repository("web")
    digest = world.push("web", "v1")
    world.push("web", "v2")
    arn = world.register(world.prod, "web", [uri("web", ":v1")])
    actions.do_sync_inventory(now=NOW)
    definition = world.deregister(world.prod, arn)

    note = deliver(cloudtrail_event(PROD, definition))

    assert "scheduled" in note
    check = DeletionCheck.objects.get(image__digest=digest)
    assert check.status == "scheduled" and check.due_at == NOW

    actions.do_run_due_checks(now=NOW)
    check.refresh_from_db()
    assert check.status == "awaiting_approval", check.evidence

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post("/deletions/approve/", {"check": [check.pk]})
    assert response.status_code == 302  # a plain form post goes back to the queue
    check.refresh_from_db()
    assert check.status == "deleted"
    assert digest not in world.ecr_digests("web")
    event = AuditEvent.objects.get(action="image.deleted")
    assert event.actor == operator_user.username
    assert event.details["digest"] == digest and event.details["tags"] == ["v1"]
    image = Image.objects.get(digest=digest)
    assert image.deleted_at is not None
    assert Repository.objects.get(name="web").bytes_reclaimed == image.size_bytes > 0
    dashboard = operator_client.get("/").content.decode()
    assert f'class="reclaimed" data-bytes="{image.size_bytes}"' in dashboard


def test_a_second_deregistration_moves_the_due_time_and_keeps_one_open_check(
    world, frozen, settings
):
    settings.CLEANUP_GRACE_PERIOD = timedelta(hours=24)
    world.repository("web")
    digest = world.push("web", "v1")
    first = world.register(world.prod, "web", [uri("web", ":v1")])
    second = world.register(world.dev, "web", [uri("web", f"@{digest}")])
    actions.do_sync_inventory(now=NOW)
    deliver(cloudtrail_event(PROD, world.deregister(world.prod, first)))
    later = NOW + timedelta(hours=5)
    actions.do_schedule_for_inactive_task_definitions(
        account_id=world.dev.account_id,
        region="eu-west-1",
        definitions=[(second, None)],
        actor="webhook:sns",
        now=later,
    )
    checks = DeletionCheck.objects.filter(image__digest=digest, status__in=DeletionCheck.OPEN)
    assert checks.count() == 1
    assert checks.get().due_at == later + timedelta(hours=24)


def test_images_outside_opted_in_repositories_are_ignored_with_the_reason(world, frozen):
    world.repository("other", opted_in=False)
    world.push("other", "1")
    arn = world.register(world.prod, "other", [uri("other", ":1"), "docker.io/library/nginx:1"])
    actions.do_sync_inventory(now=NOW)
    with pytest.raises(registry.Ignored, match="not in a registered opted-in repository"):
        deliver(cloudtrail_event(PROD, world.deregister(world.prod, arn)))
    assert not DeletionCheck.objects.exists()
