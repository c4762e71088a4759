from __future__ import annotations

from datetime import timedelta

import pytest

from accounts import aws as accounts_aws
from audit.models import AuditEvent
from cleanup import actions
from cleanup.models import DeletionCheck, Image, Repository
from tests.cleanup.conftest import NOW, REGION, uri
from tests.conftest import rows


@pytest.fixture
def awaiting(world):
    world.repository("web")
    world.push("web", "v1")
    world.push("web", "v2")
    world.register(world.prod, "web", [uri("web", ":v2")])
    actions.do_sync_inventory(now=NOW)
    actions.do_sweep(now=NOW)
    actions.do_run_due_checks(now=NOW)
    return DeletionCheck.objects.get(status="awaiting_approval")


def test_viewer_sees_the_queue_without_approve_button(awaiting, viewer_client):
    page = viewer_client.get("/deletions/").content.decode()
    assert f'id="check-{awaiting.pk}"' in page
    assert "Approve selected" not in page


def test_a_forged_approval_from_a_viewer_is_refused(awaiting, viewer_client, world):
    before = rows(DeletionCheck, Image, AuditEvent)

    response = viewer_client.post("/deletions/approve/", {"check": [awaiting.pk]})

    assert response.status_code == 403
    awaiting.refresh_from_db()
    assert awaiting.status == "awaiting_approval"
    assert not AuditEvent.objects.filter(action="check.approved").exists()
    assert rows(DeletionCheck, Image, AuditEvent) == before
    assert awaiting.image.digest in world.ecr_digests("web")


def test_outsider_cannot_see_repositories(awaiting, outsider_client):
    response = outsider_client.get("/repositories/")

    assert response.status_code == 403
    assert f'id="repository-{awaiting.image.repository_id}"' not in response.content.decode()


def test_operator_approves_with_htmx_and_gets_only_the_changed_row_back(
    awaiting, operator_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            "/deletions/approve/", {"check": [awaiting.pk]}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("<tr ") == 1  # the one row that changed, not the queue
    assert f'<tr id="check-{awaiting.pk}"' in body and 'hx-swap-oob="true"' in body
    # Under the test transaction the deletion runs after the response (on commit); in production
    # sync mode it runs before, and the browser test sees "deleted".
    assert 'data-status="approved"' in body
    assert "Approved 1 check." in body and 'id="messages"' in body
    assert response["HX-Trigger"] == "queue-changed"
    awaiting.refresh_from_db()
    assert awaiting.status == "deleted"


def test_reject_needs_a_reason_and_records_it(awaiting, operator_client):
    refused = operator_client.post(
        "/deletions/reject/",
        {"check": [awaiting.pk], "protect_reason": "not this field"},
        HTTP_HX_REQUEST="true",
    )
    assert "A rejection needs a reason: nothing changed." in refused.content.decode()
    awaiting.refresh_from_db()
    assert awaiting.status == "awaiting_approval"
    operator_client.post(
        "/deletions/reject/", {"check": [awaiting.pk], "reject_reason": "release candidate"}
    )
    awaiting.refresh_from_db()
    assert awaiting.status == "rejected" and awaiting.decision_reason == "release candidate"
    assert AuditEvent.objects.get(action="check.rejected").actor == "oscar"


def test_protect_from_the_queue_keeps_the_image(awaiting, operator_client):
    operator_client.post(
        "/deletions/protect/", {"check": [awaiting.pk], "reason": "audit evidence"}
    )
    image = Image.objects.get(pk=awaiting.image_id)
    assert image.protected and image.protected_by == "oscar"
    awaiting.refresh_from_db()
    assert awaiting.status == "cancelled"
    assert AuditEvent.objects.filter(action="image.protected").exists()


def test_the_opt_in_toggle_writes_the_tag_in_ecr(world, operator_client):
    arn = world.repository("api", opted_in=False)
    actions.do_sync_inventory(now=NOW)
    repository = Repository.objects.get(name="api")
    response = operator_client.post(
        f"/repositories/{repository.pk}/opt-in/", {"opted_in": "true"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "opted in" in response.content.decode()
    # The message shows on this page (out of band), not later on another one.
    assert '<div id="messages" hx-swap-oob="true">' in response.content.decode()
    assert "api opted in." in response.content.decode()
    assert "api opted in." not in operator_client.get("/deletions/").content.decode()
    tags = accounts_aws.client(world.registry, REGION, "ecr").list_tags_for_resource(
        resourceArn=arn
    )["tags"]
    assert {"Key": "ecr-cleanup", "Value": "enabled"} in tags
    assert AuditEvent.objects.get(action="repository.opted_in", actor="oscar")
    operator_client.post(f"/repositories/{repository.pk}/opt-in/", {"opted_in": "false"})
    assert (
        accounts_aws.client(world.registry, REGION, "ecr").list_tags_for_resource(resourceArn=arn)[
            "tags"
        ]
        == []
    )


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("https://evil.example/phish", "/repositories/"),
        ("//evil.example/phish", "/repositories/"),
        ("/deletions/?status=approved", "/deletions/?status=approved"),
    ],
)
def test_the_opt_in_form_goes_back_only_to_a_page_of_the_console(
    world, operator_client, next_url, expected
):
    world.repository("api", opted_in=False)
    actions.do_sync_inventory(now=NOW)
    repository = Repository.objects.get(name="api")

    response = operator_client.post(
        f"/repositories/{repository.pk}/opt-in/", {"opted_in": "true", "next": next_url}
    )

    assert response.status_code == 302
    assert response["Location"] == expected


def test_viewer_cannot_toggle_opt_in(world, viewer_client):
    arn = world.repository("api", opted_in=False)
    actions.do_sync_inventory(now=NOW)
    repository = Repository.objects.get(name="api")
    before = rows(Repository, AuditEvent)

    response = viewer_client.post(f"/repositories/{repository.pk}/opt-in/", {"opted_in": "true"})

    assert response.status_code == 403
    assert not Repository.objects.get(name="api").opted_in
    assert rows(Repository, AuditEvent) == before
    ecr = world.client(world.registry, "ecr")
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_admin_edits_the_policy_and_operator_cannot(awaiting, admin_client, operator_client):
    repository = Repository.objects.get(name="web")
    url = f"/repositories/{repository.pk}/policy/"
    policy = {
        "grace_hours": "48",
        "require_approval": "false",
        "keep_newest": "3",
        "keep_tag_pattern": "release-.*",
        "cleanup_action": "delete",
    }
    before = rows(Repository, DeletionCheck, AuditEvent)
    assert operator_client.get(url).status_code == 403
    assert operator_client.post(url, policy).status_code == 403
    assert rows(Repository, DeletionCheck, AuditEvent) == before

    response = admin_client.post(url, policy)
    assert response.status_code == 302
    repository.refresh_from_db()
    assert repository.grace_period == timedelta(hours=48) and repository.require_approval is False
    assert repository.keep_newest == 3 and repository.keep_tag_pattern == "release-.*"
    assert admin_client.post(url, {"keep_newest": "0", "keep_tag_pattern": "("}).status_code == 200


def test_repository_pages_show_images_usage_and_open_checks(awaiting, viewer_client):
    repository = Repository.objects.get(name="web")
    listing = viewer_client.get("/repositories/").content.decode()
    assert "web" in listing and "opted in" in listing
    page = viewer_client.get(f"/repositories/{repository.pk}/").content.decode()
    assert "task definition web:1" in page
    assert "Awaiting approval" in page


def test_check_page_shows_timeline_and_every_source_in_words(awaiting, viewer_client):
    page = viewer_client.get(f"/checks/{awaiting.pk}/").content.decode()
    assert "Timeline" in page
    assert 'title="ecs_task_definitions">ECS task definitions (ACTIVE)</span>' in page
    assert 'title="lambda_functions">Lambda functions (every version)</span>' in page
    assert page.count('class="source-row"') >= 5


def test_dashboard_tile_counts_awaiting_and_reclaimed(awaiting, viewer_client):
    page = viewer_client.get("/").content.decode()
    assert "ECR cleanup" in page and "awaiting approval" in page
