"""Restoring an archived image in a real browser: the operator clicks Restore on the repository
page and watches the row go from archived to restoring to standard, without a reload.

moto 5.2.5 does not implement ECR's ``UpdateImageStorageClass``: the test runs moto with
``scenarios.moto_patches.ecr_archive()``, which adds it (a restore stays ACTIVATING until the
test completes it, as ECR takes minutes)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from cleanup import actions, usage
from cleanup.actions import archive
from cleanup.models import DeletionCheck, Image, ImageRestore, Repository
from scenarios import moto_patches
from tests.cleanup.conftest import DEV, PROD, REGISTRY, World

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def roles(transactional_db):
    """The roles of the data migrations, granted again after the flush of an earlier
    transactional test (idempotent), with the restore permission of 0007."""
    from importlib import import_module

    from django.apps import apps as registry

    class ExistingPermissions:
        get_model = staticmethod(registry.get_model)

        @staticmethod
        def get_app_configs():
            return []

    for migration in ("accounts.migrations.0002_roles", "cleanup.migrations.0002_roles"):
        import_module(migration).forwards(ExistingPermissions, None)
    import_module("cleanup.migrations.0007_repository_cleanup_action").grant_restore(
        ExistingPermissions, None
    )


@pytest.fixture
def archived(aws, make_account, settings):
    settings.CLEANUP_GRACE_PERIOD = timedelta(0)
    settings.CLEANUP_DRY_RUN = False
    usage.clear_caches()
    world = World(
        make_account(REGISTRY, "shared", is_registry=True, environment="shared"),
        make_account(PROD, "production"),
        make_account(DEV, "development", environment="dev"),
    )
    with moto_patches.ecr_archive() as played:
        world.repository("web")
        old, new = world.push("web", "v1"), world.push("web", "v2")
        actions.do_sync_inventory()
        Repository.objects.filter(name="web").update(
            cleanup_action="archive", require_approval=False
        )
        Image.objects.filter(digest=new).update(protected=True)
        actions.do_sweep()
        actions.do_run_due_checks()
        check = DeletionCheck.objects.get(image__digest=old)
        actions.do_delete_images([check.pk])
        image = Image.objects.get(digest=old)
        assert image.storage_status == "ARCHIVED"
        played.calls.clear()
        yield world, image, played
    usage.clear_caches()


def test_an_operator_restores_an_archived_image_and_sees_it_change_without_a_reload(
    roles, archived, page, login_as, operator_user
):
    _world, image, played = archived
    login_as(operator_user)
    page.goto(f"/repositories/{image.repository_id}/")
    page.evaluate("window.__marker = 'no reload'")
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator(f"#archived-{image.pk}")
    expect(row).to_have_attribute("data-state", "ARCHIVED")

    row.get_by_role("button", name="Restore").click()

    expect(row).to_have_attribute("data-state", "ACTIVATING")
    expect(row).to_contain_text(f"asked by {operator_user.username}")
    assert played.calls == [("web", image.digest, "STANDARD")]

    # ECR finishes the restore; the worker's pass sees it; the row's polling shows it.
    played.complete_restores()
    archive.do_archive_pass()

    expect(row).to_have_attribute("data-state", "ACTIVE")
    expect(row).to_contain_text("Restored · asked by")
    expect(row.get_by_role("button", name="Restore")).to_have_count(0)
    assert page.evaluate("window.__marker") == "no reload"
    assert ImageRestore.objects.get(image=image).status == "restored"
    actions_done = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"image.restore_requested", "image.restored"} <= actions_done
