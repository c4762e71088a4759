from __future__ import annotations

import getpass
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from cleanup.models import DeletionCheck, Image, Repository
from tests.cleanup.conftest import uri


def run(*args) -> str:
    out = StringIO()
    call_command("cleanup", *args, stdout=out)
    return out.getvalue()


def test_sync_sweep_run_due_approve_and_status(world, django_capture_on_commit_callbacks):
    world.repository("web")
    world.repository("private", opted_in=False)
    unused = world.push("web", "old")
    used = world.push("web", "live")
    world.push("private", "x")
    world.register(world.prod, "web", [uri("web", ":live")])

    assert "2 repositories, 3 images" in run("sync")
    assert Repository.objects.get(name="web").opted_in
    dry = json.loads(run("sweep", "--dry-run", "--json"))
    assert [image["digest"] for image in dry["scheduled"]] == [unused]
    assert not DeletionCheck.objects.exists()
    assert "scheduled 1 checks" in run("sweep")
    assert "awaiting_approval: 1" in run("run-due")
    with django_capture_on_commit_callbacks(execute=True):
        approved = json.loads(run("approve", "--all", "--json"))
    check = DeletionCheck.objects.get()
    assert approved["approved"] == [check.pk]
    check.refresh_from_db()
    assert check.status == "deleted"
    assert unused not in world.ecr_digests("web") and used in world.ecr_digests("web")
    assert AuditEvent.objects.get(action="image.deleted").actor == f"cli:{getpass.getuser()}"
    status = json.loads(run("status", "--json"))
    assert status["checks"] == {"deleted": 1} and status["bytes_reclaimed"] > 0


def test_approve_names_checks_that_are_not_awaiting_approval(db):
    with pytest.raises(CommandError, match="not awaiting approval: 42"):
        run("approve", "42")
    with pytest.raises(CommandError, match=r"CHECK_ID\.\.\. or --all"):
        run("approve")


def test_sweep_refuses_to_schedule_when_a_source_fails(world, monkeypatch):
    from cleanup import aws

    def denied(account, region, clusters):
        raise aws.CleanupAwsError(
            "AccessDenied: no", code="AccessDenied", account_id=account.account_id
        )

    monkeypatch.setattr(aws, "list_services", denied)
    world.repository("web")
    world.push("web", "v1")
    run("sync")
    with pytest.raises(CommandError, match="AccessDenied"):
        run("sweep")
    assert not DeletionCheck.objects.exists()


def test_sync_marks_images_that_vanished_from_ecr_as_deleted(world):
    world.repository("web")
    gone = world.push("web", "old")
    world.push("web", "new")
    run("sync")
    world.client(world.registry, "ecr").batch_delete_image(
        repositoryName="web", imageIds=[{"imageDigest": gone}]
    )
    assert "1 vanished" in run("sync")
    image = Image.objects.get(digest=gone)
    assert image.deleted_at is not None and not image.deleted_by_console
