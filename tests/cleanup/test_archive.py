"""Reversible cleanup: archive instead of delete, restore (page and CLI), automatic restore of an
archived image used again, archive-then-delete after its days, and the savings figures.

moto 5.2.5 does not implement ECR's ``UpdateImageStorageClass`` nor report ``imageStatus``:
these tests run moto with ``scenarios.moto_patches.ecr_archive()``, which adds both (and
honours ``DescribeImages``' ``filter.imageStatus`` as ECR does: ACTIVE only unless asked)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from cleanup import actions, savings
from cleanup.actions import archive
from cleanup.models import DeletionCheck, Image, ImageRestore, Repository
from console import schedules
from scenarios import moto_patches
from tests.cleanup.conftest import NOW, uri
from tests.conftest import rows

GIB = 1024**3


@pytest.fixture
def ecr_archive(world):
    with moto_patches.ecr_archive(moto_patches.EcrArchive(now=NOW)) as played:
        yield played


def setup_repository(world, name="web", *, action="archive", days=None, approval=False, **fields):
    world.repository(name)
    digests = [world.push(name, f"v{n}") for n in range(2)]
    actions.do_sync_inventory(now=NOW)
    Repository.objects.filter(name=name).update(
        cleanup_action=action,
        archive_delete_after_days=days,
        require_approval=approval,
        **fields,
    )
    return digests


def approve_and_execute(world, now=NOW):
    """The flow an operator drives: sweep, decide, approve, execute."""
    actions.do_sweep(now=now)
    actions.do_run_due_checks(now=now)
    waiting = list(
        DeletionCheck.objects.filter(status="awaiting_approval").values_list("id", flat=True)
    )
    if waiting:
        actions.do_approve_checks(waiting, actor="oscar", now=now)
    ids = list(DeletionCheck.objects.filter(status="approved").values_list("id", flat=True))
    return actions.do_delete_images(ids, now=now)


def ecr_status(world, repo: str) -> dict[str, str]:
    details = world.client(world.registry, "ecr").describe_images(
        repositoryName=repo, filter={"imageStatus": "ANY"}
    )["imageDetails"]
    return {d["imageDigest"]: d.get("imageStatus", "ACTIVE") for d in details}


def archived_image(world, ecr_archive, name="web", **fields) -> Image:
    first, second = setup_repository(world, name, **fields)
    Image.objects.filter(digest=second).update(protected=True)  # stays ACTIVE
    approve_and_execute(world)
    image = Image.objects.get(digest=first)
    assert image.storage_status == "ARCHIVED"
    ecr_archive.calls.clear()
    return image


# --- Archive --------------------------------------------------------------------------------


def test_it_archives_an_approved_image_by_digest_instead_of_deleting_it(world, ecr_archive):
    first, second = setup_repository(world, approval=True)
    Image.objects.filter(digest=second).update(protected=True)

    result = approve_and_execute(world)

    assert ecr_archive.calls == [("web", first, "ARCHIVE")]
    assert ecr_status(world, "web") == {first: "ARCHIVED", second: "ACTIVE"}
    check = DeletionCheck.objects.get(image__digest=first)
    assert check.status == "archived"
    assert result.archived == [check.pk] and result.deleted == []
    image = Image.objects.get(digest=first)
    assert (image.storage_status, image.archived_at, image.archived_by_console) == (
        "ARCHIVED",
        NOW,
        True,
    )
    assert image.deleted_at is None
    assert Repository.objects.get(name="web").bytes_reclaimed == 0
    event = AuditEvent.objects.get(action="image.archived")
    assert event.actor == "oscar" and event.details["digest"] == first
    assert not AuditEvent.objects.filter(action="image.deleted").exists()


def test_a_refused_archive_keeps_the_image_and_fails_the_check(world, ecr_archive):
    first, _ = setup_repository(world)
    ecr_archive.refuse[first] = "ImageStorageClassUpdateNotSupportedException"

    result = approve_and_execute(world)

    check = DeletionCheck.objects.get(image__digest=first)
    assert check.status == "failed" and "NotSupported" in check.last_error
    assert result.failed == [check.pk]
    assert ecr_status(world, "web")[first] == "ACTIVE"
    assert Image.objects.get(digest=first).storage_status == "ACTIVE"
    assert AuditEvent.objects.get(action="image.archive_failed").details["digest"] == first


def test_the_sync_shows_archived_images_as_archived_not_vanished(world, ecr_archive):
    first, _ = setup_repository(world, action="delete")
    world.client(world.registry, "ecr").update_image_storage_class(
        repositoryName="web", imageId={"imageDigest": first}, targetStorageClass="ARCHIVE"
    )

    actions.do_sync_inventory(now=NOW + timedelta(hours=1))

    image = Image.objects.get(digest=first)
    assert image.deleted_at is None
    assert (image.storage_status, image.archived_at) == ("ARCHIVED", NOW)


def test_the_sweep_leaves_archived_images_alone(world, ecr_archive):
    image = archived_image(world, ecr_archive)

    actions.do_sweep(now=NOW + timedelta(days=1))

    assert not image.checks.filter(status__in=DeletionCheck.OPEN).exists()


# --- Restore --------------------------------------------------------------------------------


def test_an_operator_restores_from_the_page_and_the_row_polls_until_active(
    world, ecr_archive, operator_client, operator_user
):
    image = archived_image(world, ecr_archive)
    page = operator_client.get(f"/repositories/{image.repository_id}/").content.decode()
    assert f'id="archived-{image.pk}" data-state="ARCHIVED"' in page

    response = operator_client.post(
        f"/repositories/images/{image.pk}/restore/", HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert ecr_archive.calls == [("web", image.digest, "STANDARD")]  # one AWS call
    body = response.content.decode()
    assert 'data-state="ACTIVATING"' in body and 'hx-trigger="every 2s"' in body
    restore = ImageRestore.objects.get(image=image)
    assert (restore.status, restore.requested_by) == ("activating", operator_user.username)

    ecr_archive.complete_restores()
    ImageRestore.objects.filter(pk=restore.pk).update(last_checked_at=NOW - timedelta(hours=1))
    poll = operator_client.get(
        f"/repositories/images/{image.pk}/restore/state/", HTTP_HX_REQUEST="true"
    )

    assert poll.status_code == 286  # htmx stops polling: the restore is final
    assert 'data-state="ACTIVE"' in poll.content.decode()
    image.refresh_from_db()
    assert image.storage_status == "ACTIVE" and image.activated_at is not None
    assert ecr_status(world, "web")[image.digest] == "ACTIVE"
    assert list(
        AuditEvent.objects.filter(action__startswith="image.restore")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["image.restore_requested", "image.restored"]
    requested = AuditEvent.objects.get(action="image.restore_requested")
    assert requested.actor == operator_user.username and requested.details["automatic"] is False
    timeline = DeletionCheck.objects.get(image=image, status="archived").timeline
    assert "restore requested" in timeline[-2]["text"] and "restored" in timeline[-1]["text"]


def test_a_viewer_cannot_restore_and_nothing_changes(world, ecr_archive, viewer_client):
    image = archived_image(world, ecr_archive)
    before = rows(Image, ImageRestore, AuditEvent)

    response = viewer_client.post(f"/repositories/images/{image.pk}/restore/")

    assert response.status_code == 403
    assert rows(Image, ImageRestore, AuditEvent) == before
    assert ecr_archive.calls == []
    page = viewer_client.get(f"/repositories/{image.repository_id}/").content.decode()
    assert f'id="archived-{image.pk}"' in page and "/restore/" not in page


def test_the_cli_restores_by_digest_and_refuses_what_is_not_archived(world, ecr_archive):
    image = archived_image(world, ecr_archive)
    other = Image.objects.exclude(pk=image.pk).get(repository=image.repository)

    call_command("cleanup", "restore", image.digest.removeprefix("sha256:")[:16])

    restore = ImageRestore.objects.get(image=image)
    assert restore.status == "activating" and restore.requested_by.startswith("cli:")
    assert ecr_archive.calls == [("web", image.digest, "STANDARD")]
    event = AuditEvent.objects.get(action="image.restore_requested")
    assert event.actor.startswith("cli:")
    with pytest.raises(CommandError, match="already under way"):
        call_command("cleanup", "restore", str(image.pk))
    with pytest.raises(CommandError, match="not archived"):
        call_command("cleanup", "restore", str(other.pk))
    with pytest.raises(CommandError, match="no image"):
        call_command("cleanup", "restore", "sha256:" + "0" * 64)
    assert ImageRestore.objects.count() == 1 and len(ecr_archive.calls) == 1

    ecr_archive.complete_restores()
    result = archive.do_archive_pass(now=NOW + timedelta(minutes=5))

    assert result.restored == 1
    assert ImageRestore.objects.get(pk=restore.pk).status == "restored"


# --- Automatic restore ----------------------------------------------------------------------


def test_an_archived_image_deployed_again_is_restored_by_itself(world, ecr_archive):
    image = archived_image(world, ecr_archive)
    world.register(world.prod, "web", [uri("web", f"@{image.digest}")])
    later = NOW + timedelta(days=3)

    result = archive.do_archive_pass(now=later)

    assert ecr_archive.calls == [("web", image.digest, "STANDARD")]
    restore = ImageRestore.objects.get(image=image)
    assert result.auto_restores == [restore.pk]
    assert restore.automatic and restore.requested_by == "worker"
    assert "referenced again" in restore.reason and restore.references
    event = AuditEvent.objects.get(action="image.restore_requested")
    assert event.details["automatic"] is True and event.details["references"]
    check = DeletionCheck.objects.get(image=image, status="archived")
    assert "restore requested: referenced again" in check.timeline[-1]["text"]
    assert list(archive.needs_attention(now=later)) == [restore]
    assert list(archive.needs_attention(now=later + timedelta(days=8))) == []

    ecr_archive.complete_restores()
    archive.do_archive_pass(now=later + timedelta(minutes=5))
    image.refresh_from_db()
    assert image.storage_status == "ACTIVE" and image.last_used_at == later + timedelta(minutes=5)


def test_no_automatic_restore_where_the_repository_says_no(world, ecr_archive):
    image = archived_image(world, ecr_archive, auto_restore=False)
    world.register(world.prod, "web", [uri("web", ":v0")])

    result = archive.do_archive_pass(now=NOW + timedelta(days=3))

    assert result.auto_restores == [] and ecr_archive.calls == []
    assert not ImageRestore.objects.exists()
    assert Image.objects.get(pk=image.pk).storage_status == "ARCHIVED"


# --- Archive, then delete -------------------------------------------------------------------


def test_archive_then_delete_deletes_only_after_its_days(world, ecr_archive):
    image = archived_image(world, ecr_archive, action="archive_then_delete", days=120)
    check = DeletionCheck.objects.get(image=image)
    assert "deleted from 2027-03-27" in check.timeline[-1]["text"]

    early = NOW + timedelta(days=119)
    assert archive.do_archive_pass(now=early).delete_checks == 0
    actions.do_run_due_checks(now=early)
    assert ecr_status(world, "web")[image.digest] == "ARCHIVED"

    due = NOW + timedelta(days=120, minutes=1)
    assert archive.do_archive_pass(now=due).delete_checks == 1
    assert archive.do_archive_pass(now=due).delete_checks == 0  # one open check per image
    actions.do_run_due_checks(now=due)
    second = DeletionCheck.objects.get(image=image, trigger="archive_expired")
    assert second.status == "approved"  # the repository needs no approval
    result = actions.do_delete_images([second.pk], now=due)

    assert result.deleted == [second.pk]
    assert image.digest not in ecr_status(world, "web")
    assert ecr_archive.calls == []  # deleted by BatchDeleteImage, not archived again
    assert Image.objects.get(pk=image.pk).deleted_at == due
    assert AuditEvent.objects.filter(action="image.deleted").count() == 1


# --- Policy: form and CLI, one validator ------------------------------------------------------


def test_the_policy_form_refuses_archive_then_delete_under_90_days(world, admin_client):
    setup_repository(world, action="delete")
    repository = Repository.objects.get(name="web")
    form = {"keep_newest": 0, "keep_tag_pattern": "", "cleanup_action": "archive_then_delete"}
    before = rows(Repository, AuditEvent)

    refused = admin_client.post(
        f"/repositories/{repository.pk}/policy/", {**form, "archive_delete_after_days": 30}
    )

    assert refused.status_code == 200
    assert "at least 90 days" in refused.content.decode()
    assert rows(Repository, AuditEvent) == before
    saved = admin_client.post(
        f"/repositories/{repository.pk}/policy/",
        {**form, "archive_delete_after_days": 90, "auto_restore": "on"},
    )
    assert saved.status_code == 302
    repository.refresh_from_db()
    assert (repository.cleanup_action, repository.archive_delete_after_days) == (
        "archive_then_delete",
        90,
    )
    assert AuditEvent.objects.get(action="repository.policy_changed").details["cleanup_action"]


def test_the_cli_sets_the_action_with_the_same_rule(world):
    setup_repository(world, action="delete")
    before = rows(Repository, AuditEvent)

    with pytest.raises(CommandError, match="at least 90 days"):
        call_command("cleanup", "set-action", "web", "archive-then-delete", "--after-days", "30")
    with pytest.raises(CommandError, match="at least 90 days"):
        call_command("cleanup", "set-action", "web", "archive-then-delete")
    assert rows(Repository, AuditEvent) == before

    call_command(
        "cleanup", "set-action", "web", "archive-then-delete", "--after-days", "180",
        "--auto-restore", "off",
    )  # fmt: skip
    repository = Repository.objects.get(name="web")
    assert (
        repository.cleanup_action,
        repository.archive_delete_after_days,
        repository.auto_restore,
    ) == ("archive_then_delete", 180, False)
    assert AuditEvent.objects.filter(action="repository.policy_changed").count() == 1


# --- Savings --------------------------------------------------------------------------------


def test_the_savings_price_the_archive_and_its_90_day_minimum(world, ecr_archive, settings):
    settings.CLEANUP_PRICE_PER_GB_MONTH = 0.10
    settings.CLEANUP_ARCHIVE_PRICE_PER_GB_MONTH = 0.07
    kept = archived_image(world, ecr_archive)
    restored = Image.objects.exclude(pk=kept.pk).get(repository=kept.repository)
    Image.objects.filter(pk=kept.pk).update(size_bytes=10 * GIB, archived_at=NOW)
    Image.objects.filter(pk=restored.pk).update(
        size_bytes=3 * GIB,
        archived_by_console=True,
        archived_at=NOW - timedelta(days=60),
        activated_at=NOW - timedelta(days=30),  # left the archive after 30 of its 90 days
    )
    Repository.objects.filter(pk=kept.repository_id).update(bytes_reclaimed=2 * GIB)

    figures = savings.savings(now=NOW + timedelta(days=30))

    assert figures.archived_images == 1 and figures.archived_bytes == 10 * GIB
    assert figures.saved_by_deletion_per_month == 0.20  # 2 GiB deleted at 0.10
    assert figures.saved_by_archive_per_month == 0.30  # 10 GiB at 0.10 - 0.07
    assert figures.saved_per_month == 0.50
    assert figures.archive_cost_per_month == 0.70
    assert figures.minimum_charges == 0.42  # 3 GiB x 0.07 x 60 days short / 30
    assert figures.minimum_still_due == 1.40  # 10 GiB x 0.07 x 60 days to go / 30
    out = call_command_output("status")
    assert "saved per month: 0.50 USD" in out and "0.42 USD charged" in out


def call_command_output(*args: str) -> str:
    from io import StringIO

    buffer = StringIO()
    call_command("cleanup", *args, stdout=buffer)
    return buffer.getvalue()


def test_the_archive_pass_runs_by_itself():
    recurring = schedules.get("cleanup.archive")
    assert recurring is not None and recurring.func == "cleanup.archive_tasks.archive_pass"
