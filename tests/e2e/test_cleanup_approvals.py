"""The deletion queue in a real browser: approve two checks, see them deleted in place."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from cleanup import actions, usage
from cleanup.actions import approvals
from cleanup.models import DeletionCheck
from tests.cleanup.conftest import DEV, PROD, REGISTRY, World
from tests.conftest import rows

# The live server needs committed rows; the roles come from a data migration.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def roles(transactional_db):
    """The roles of the data migrations. The flush after a transactional test removes them and,
    run alone, this module's second test found them missing: grant them again (idempotent)."""
    from importlib import import_module

    from django.apps import apps as registry

    class ExistingPermissions:  # the permissions survive the flush (post_migrate recreates them)
        get_model = staticmethod(registry.get_model)

        @staticmethod
        def get_app_configs():
            return []

    for migration in ("accounts.migrations.0002_roles", "cleanup.migrations.0002_roles"):
        import_module(migration).forwards(ExistingPermissions, None)


@pytest.fixture
def queue(aws, make_account, settings):
    settings.CLEANUP_GRACE_PERIOD = timedelta(0)
    settings.CLEANUP_REQUIRE_APPROVAL = True
    settings.CLEANUP_DRY_RUN = False
    usage.clear_caches()
    world = World(
        make_account(REGISTRY, "shared", is_registry=True, environment="shared"),
        make_account(PROD, "production"),
        make_account(DEV, "development", environment="dev"),
    )
    world.repository("web")
    digests = [world.push("web", f"v{n}") for n in range(3)]
    actions.do_sync_inventory()
    actions.do_sweep()
    actions.do_run_due_checks()
    checks = [DeletionCheck.objects.get(image__digest=digest) for digest in digests]
    assert {check.status for check in checks} == {"awaiting_approval"}
    yield world, digests, checks
    usage.clear_caches()


def test_an_operator_approves_two_checks_and_sees_them_deleted_without_a_reload(
    roles, queue, page, login_as, operator_user
):
    world, digests, checks = queue
    login_as(operator_user)
    page.goto("/deletions/")
    page.evaluate("window.__marker = 'no reload'")
    page.on("dialog", lambda dialog: dialog.accept())
    first, second, third = checks

    page.locator(f"#check-{first.pk} input[name=check]").check()
    page.locator(f"#check-{second.pk} input[name=check]").check()
    page.get_by_role("button", name="Approve selected").click()

    expect(page.locator(f"#check-{first.pk}")).to_have_attribute("data-status", "deleted")
    expect(page.locator(f"#check-{second.pk}")).to_have_attribute("data-status", "deleted")
    expect(page.locator(f"#check-{third.pk}")).to_have_attribute("data-status", "awaiting_approval")
    expect(page.locator("#messages")).to_have_text("Approved 2 checks.")
    assert page.evaluate("window.__marker") == "no reload"
    remaining = world.ecr_digests("web")
    assert digests[0] not in remaining and digests[1] not in remaining and digests[2] in remaining


def test_a_viewer_has_no_approve_button_and_a_forged_post_is_refused(
    roles, queue, page, login_as, viewer_user
):
    world, digests, checks = queue
    login_as(viewer_user)
    page.goto("/deletions/")
    expect(page.locator(f"#check-{checks[0].pk}")).to_be_visible()
    expect(page.get_by_role("button", name="Approve selected")).to_have_count(0)
    csrf = next(
        cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken"
    )
    before = rows(DeletionCheck, AuditEvent)
    answer = page.request.post(
        "/deletions/approve/", form={"check": str(checks[0].pk)}, headers={"X-CSRFToken": csrf}
    )
    assert answer.status == 403
    assert DeletionCheck.objects.get(pk=checks[0].pk).status == "awaiting_approval"
    assert rows(DeletionCheck, AuditEvent) == before
    assert set(digests) <= world.ecr_digests("web")


def test_the_tab_counts_and_totals_change_without_a_reload(
    roles, queue, page, login_as, operator_user
):
    _world, _digests, checks = queue
    login_as(operator_user)
    page.goto("/deletions/")
    page.evaluate("window.__marker = 'no reload'")
    awaiting = page.locator("#tab-awaiting_approval .badge")
    expect(awaiting).to_have_text("3")
    expect(page.locator("#queue-summary")).to_contain_text("3 checks awaiting approval")
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))

    page.locator(f"#check-{checks[0].pk} input[name=check]").check()
    page.get_by_role("button", name="Approve selected").click()

    expect(awaiting).to_have_text("2")
    expect(page.locator("#queue-summary")).to_contain_text("2 checks awaiting approval")
    expect(page.locator("#tab-closed .badge")).to_have_text("1")
    assert questions == [f"Delete 1 image, {_size(checks[0])}, from 1 repository?"]
    assert page.evaluate("window.__marker") == "no reload"


def _size(check) -> str:
    from django.template.defaultfilters import filesizeformat

    return filesizeformat(check.image.size_bytes).replace("\xa0", " ")


def test_approve_asks_nothing_and_sends_nothing_while_nothing_is_selected(
    roles, queue, page, login_as, operator_user
):
    _world, _digests, checks = queue
    login_as(operator_user)
    page.goto("/deletions/")
    questions: list[str] = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    approve = page.get_by_role("button", name="Approve selected")
    expect(approve).to_have_attribute("aria-disabled", "true")

    page.evaluate(
        "window.__requests = 0;"
        " document.addEventListener('htmx:beforeRequest', function () { window.__requests++; })"
    )
    approve.click(force=True)  # marked disabled (aria-disabled), still focusable and clickable

    # htmx decides in the click's own handler: no request was even started.
    assert page.evaluate("window.__requests") == 0

    expect(page.locator(f"#check-{checks[0].pk}")).to_have_attribute(
        "data-status", "awaiting_approval"
    )
    assert questions == []
    assert set(DeletionCheck.objects.values_list("status", flat=True)) == {"awaiting_approval"}


def test_an_approved_row_turns_deleted_by_itself(
    roles, queue, page, login_as, operator_user, monkeypatch
):
    """The worker deletes later (here: the test, once the page shows "approved"); the page
    watches the row and shows "deleted" without a reload, then stops watching."""
    world, digests, checks = queue
    monkeypatch.setattr(approvals, "enqueue_deletion", lambda ids: None)
    login_as(operator_user)
    page.goto("/deletions/")
    page.evaluate("window.__marker = 'no reload'")
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator(f"#check-{checks[0].pk}")

    row.locator("input[name=check]").check()
    page.get_by_role("button", name="Approve selected").click()
    expect(row).to_have_attribute("data-status", "approved")
    expect(page.locator("#tab-approved .badge")).to_have_text("1")

    actions.do_delete_images([checks[0].pk])

    expect(row).to_have_attribute("data-status", "deleted", timeout=8_000)
    expect(page.locator("#tab-approved .badge")).to_have_text("0")
    expect(page.locator("#tab-closed .badge")).to_have_text("1")
    assert digests[0] not in world.ecr_digests("web")
    assert page.evaluate("window.__marker") == "no reload"


def test_keyboard_only_approval_keeps_the_focus(roles, queue, page, login_as, operator_user):
    _world, _digests, checks = queue
    login_as(operator_user)
    page.goto("/deletions/")
    page.on("dialog", lambda dialog: dialog.accept())
    target = f"pick-{checks[1].pk}"

    for _ in range(80):  # Tab through the page to the row's checkbox
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == target:
            break
    assert page.evaluate("document.activeElement.id") == target
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        f"Select {checks[1].image.label}"
    )
    page.keyboard.press("Space")
    for _ in range(80):  # back to the approve button
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.id") == "approve-selected":
            break
    page.keyboard.press("Enter")

    expect(page.locator(f"#check-{checks[1].pk}")).to_have_attribute("data-status", "deleted")
    expect(page.locator("#messages")).to_have_text("Approved 1 check.")
    expect(page.locator("#approve-selected")).to_be_focused()  # once the swap has settled
