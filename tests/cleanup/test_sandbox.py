"""The cleanup's sandbox data and its demo-only button."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from cleanup import usage
from cleanup.models import DeletionCheck, Image, Repository
from sandbox import aws as sandbox_aws
from sandbox import seed_accounts, seed_cleanup
from tests.conftest import rows
from webhooks.models import InboundEvent


@pytest.fixture
def seeded(aws, db):
    usage.clear_caches()
    seed_accounts.seed()
    seed_cleanup.seed()
    yield
    usage.clear_caches()


def status_of(repository: str, tag: str) -> str:
    image = next(
        image for image in Image.objects.filter(repository__name=repository) if tag in image.tags
    )
    return image.checks.latest("id").status


def test_the_sandbox_shows_checks_evidence_and_approvals_at_once(seeded):
    repositories = {repository.name: repository for repository in Repository.objects.all()}
    assert sorted(repositories) == ["platform/base", "shop/api", "shop/web"]
    assert [name for name, r in repositories.items() if r.opted_in] == ["shop/api", "shop/web"]
    assert repositories["shop/api"].tag_mutability == "IMMUTABLE"
    index = next(
        image for image in Image.objects.filter(repository__name="shop/web") if image.is_index
    )
    assert len(index.child_digests) == 2
    assert status_of("shop/web", "v1") == "awaiting_approval"
    assert status_of("shop/web", "v2") == "in_use"  # a service runs the deregistered revision
    assert status_of("shop/api", "1.0.0") == "awaiting_approval"
    assert status_of("shop/api", "1.0.2") == "awaiting_approval"
    assert not DeletionCheck.objects.filter(image__repository__name="platform/base").exists()
    assert DeletionCheck.objects.filter(status="scheduled", trigger="sweep").exists()
    # Seeding again (the demo's database outlives moto's server) duplicates nothing.
    open_checks = DeletionCheck.objects.filter(status__in=DeletionCheck.OPEN).count()
    sandbox_aws.clear()
    seed_cleanup.seed()
    assert Repository.objects.count() == 3
    assert DeletionCheck.objects.filter(status__in=DeletionCheck.OPEN).count() == open_checks


def test_the_demo_button_deregisters_and_delivers_the_event(seeded, settings, operator_client):
    settings.SANDBOX = True
    page = operator_client.get("/sandbox/cleanup/deregister/")
    assert page.status_code == 200
    arn = sandbox_aws.client("222222222222", "ecs").list_task_definitions(
        familyPrefix="shop-web", status="ACTIVE"
    )["taskDefinitionArns"][0]
    response = operator_client.post(
        "/sandbox/cleanup/deregister/", {"task_definition": f"222222222222|{arn}"}
    )
    assert response.status_code == 302
    event = InboundEvent.objects.get(kind="task_definition_deregistered")
    assert event.payload["detail"]["responseElements"]["taskDefinition"]["taskDefinitionArn"] == arn
    described = sandbox_aws.client("222222222222", "ecs").describe_task_definition(
        taskDefinition=arn
    )
    assert described["taskDefinition"]["status"] == "INACTIVE"


def active_shop_web() -> str:
    return sandbox_aws.client("222222222222", "ecs").list_task_definitions(
        familyPrefix="shop-web", status="ACTIVE"
    )["taskDefinitionArns"][0]


def status_in_ecs(arn: str) -> str:
    ecs = sandbox_aws.client("222222222222", "ecs")
    return ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"]


def test_the_demo_button_is_404_outside_the_sandbox(seeded, settings, operator_client):
    settings.SANDBOX = False
    arn = active_shop_web()
    before = rows(InboundEvent, DeletionCheck, AuditEvent)

    response = operator_client.post(
        "/sandbox/cleanup/deregister/", {"task_definition": f"222222222222|{arn}"}
    )

    assert response.status_code == 404
    assert rows(InboundEvent, DeletionCheck, AuditEvent) == before
    assert status_in_ecs(arn) == "ACTIVE"


def test_a_viewer_cannot_press_the_demo_button(seeded, settings, viewer_client):
    settings.SANDBOX = True
    arn = active_shop_web()
    before = rows(InboundEvent, DeletionCheck, AuditEvent)

    response = viewer_client.post(
        "/sandbox/cleanup/deregister/", {"task_definition": f"222222222222|{arn}"}
    )

    assert response.status_code == 403
    assert rows(InboundEvent, DeletionCheck, AuditEvent) == before
    assert status_in_ecs(arn) == "ACTIVE"
