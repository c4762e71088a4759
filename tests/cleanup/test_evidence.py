"""Evidence an operator can sign: for THIS image, what every source answered, where it is used,
what was asked and when, the times that judge it, and the rule that decided, in words."""

from __future__ import annotations

import re

import pytest
from django.template.defaultfilters import filesizeformat

from cleanup import actions
from cleanup.actions import approvals
from cleanup.models import DeletionCheck, Image
from tests.cleanup.conftest import NOW, PROD, uri


@pytest.fixture
def decided(world):
    """Two images of one repository: v1 runs in production (a task definition), v2 is unused.
    Both decided from the same usage snapshot."""
    world.repository("web")
    used = world.push("web", "v1")
    unused = world.push("web", "v2")
    world.register(world.prod, "web", [uri("web", ":v1")])
    actions.do_sync_inventory(now=NOW)
    actions.do_request_check(Image.objects.get(digest=used), actor="oscar", now=NOW)
    actions.do_sweep(now=NOW)
    actions.do_run_due_checks(now=NOW)
    return (
        DeletionCheck.objects.get(image__digest=used),
        DeletionCheck.objects.get(image__digest=unused),
    )


def source_row(page: str, source: str, account: str) -> str:
    match = re.search(
        rf'<tr class="source-row" data-source="{source}" data-account="{account}">(.*?)</tr>',
        page,
        re.S,
    )
    assert match, f"no row for {source} {account}"
    return match.group(1)


def test_the_record_holds_this_images_own_answer(decided):
    used, unused = decided
    assert used.status == "in_use" and unused.status == "awaiting_approval"
    assert used.snapshot_id == unused.snapshot_id  # one snapshot, two different answers

    assert unused.evidence["references_checked"] is True
    assert unused.evidence["reference_count"] == 0 and unused.evidence["matched"] == {}
    assert unused.evidence["asked"]["uri"].endswith(f"/web@{unused.image.digest}")
    assert unused.evidence["asked"]["tags"] == ["v2"]
    assert unused.evidence["pushed_at"] is not None

    assert used.evidence["matched"] == {f"ecs_task_definitions|{PROD}": 1}
    assert used.evidence["references"][0]["where"] == "task definition web:1"


def test_the_check_page_never_shows_the_snapshots_totals_as_the_images(decided, viewer_client):
    used, unused = decided

    page = viewer_client.get(f"/checks/{unused.pk}/").content.decode()

    row = source_row(page, "ecs_task_definitions", PROD)
    assert "not referenced" in row and "task definition web:1" not in row
    assert "in all" not in page  # the old per-snapshot totals are gone
    assert "Unused</strong>: no source references it and every source answered." in page
    assert 'title="ecs_task_definitions">ECS task definitions (ACTIVE)</span>' in page

    page = viewer_client.get(f"/checks/{used.pk}/").content.decode()
    row = source_row(page, "ecs_task_definitions", PROD)
    assert "referenced once" in row and "task definition web:1" in row
    assert "In use</strong>: referenced once." in page


def test_the_check_page_says_what_was_asked_and_the_times_that_judge(decided, viewer_client):
    _, unused = decided
    page = viewer_client.get(f"/checks/{unused.pk}/").content.decode()
    assert f"/web@{unused.image.digest}" in page
    assert "Last pushed" in page and "Last pulled" in page and "Last used" in page
    assert "never recorded by ECR" in page and "not seen in use by any source" in page
    assert '<span class="tag">v2</span>' in page
    assert 'title="awaiting_approval">Awaiting approval</span>' in page  # timeline in words


def test_the_approve_button_sits_beside_the_evidence_and_asks_once(decided, operator_client):
    _, unused = decided
    page = operator_client.get(f"/checks/{unused.pk}/").content.decode()
    size = filesizeformat(unused.image.size_bytes)
    assert f'data-confirm="Delete 1 image, {size}, from 1 repository?"' in page
    assert page.index("Evidence for this image") < page.index('id="approve-check"')
    assert 'name="reject_reason"' in page and 'name="protect_reason"' in page


def test_the_check_page_approves_and_comes_back_with_its_message(
    decided, operator_client, monkeypatch
):
    _, unused = decided
    monkeypatch.setattr(approvals, "enqueue_deletion", lambda ids: None)
    response = operator_client.post(
        "/deletions/approve/",
        {"check": [unused.pk], "next": f"/checks/{unused.pk}/"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/checks/{unused.pk}/"
    assert "Approved 1 check." in response.content.decode()


def test_the_check_state_polls_while_the_worker_has_it_and_stops_when_final(decided, viewer_client):
    _used, unused = decided
    DeletionCheck.objects.filter(pk=unused.pk).update(status="approved")
    waiting = viewer_client.get(
        f"/checks/{unused.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="check-state"
    )
    assert waiting.status_code == 200 and 'hx-trigger="every 3s"' in waiting.content.decode()

    DeletionCheck.objects.filter(pk=unused.pk).update(status="deleted")
    final = viewer_client.get(
        f"/checks/{unused.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="check-state"
    )
    assert final.status_code == 286 and "hx-trigger" not in final.content.decode()
    assert 'data-status="deleted"' in final.content.decode()
