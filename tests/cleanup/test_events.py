"""Inbound events schedule checks: CloudTrail through the real webhook door, and AWS Config."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from cleanup import actions, handlers
from cleanup.models import DeletionCheck
from tests.cleanup.conftest import NOW, PROD, REGION, cloudtrail_event, uri
from webhooks import registry
from webhooks.models import InboundEvent


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    monkeypatch.setattr("console.clock.now", lambda: NOW)


def config_event(
    account_id: str, configuration: dict, resource_type="AWS::ECS::TaskDefinition", status="OK"
) -> dict:
    return {
        "id": "cfg-1",
        "detail-type": "Config Configuration Item Change",
        "source": "aws.config",
        "account": account_id,
        "region": REGION,
        "detail": {
            "configurationItemDiff": {"changeType": "UPDATE"},
            "configurationItem": {
                "resourceType": resource_type,
                "awsAccountId": account_id,
                "awsRegion": REGION,
                "configurationItemStatus": status,
                "configuration": configuration,
            },
        },
    }


def test_a_cloudtrail_event_through_the_webhook_door_schedules_a_check(
    world, client, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_API_KEYS = ["k-123"]
    world.repository("web")
    digest = world.push("web", "v1")
    arn = world.register(world.prod, "web", [uri("web", ":v1")])
    actions.do_sync_inventory(now=NOW)
    event = cloudtrail_event(PROD, world.deregister(world.prod, arn), event_id="evt-door")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/webhooks/eventbridge/",
            json.dumps(event),
            content_type="application/json",
            HTTP_X_API_KEY="k-123",
        )
    assert response.status_code == 202
    stored = InboundEvent.objects.get(dedupe_key="evt-door")
    assert stored.status == "processed", stored.error
    assert "scheduled checks for" in stored.note
    assert DeletionCheck.objects.get(image__digest=digest).status == "scheduled"


def test_an_event_without_the_revision_is_described_in_its_account(world):
    world.repository("web")
    digest = world.push("web", "v1")
    arn = world.register(world.prod, "web", [uri("web", ":v1")])
    actions.do_sync_inventory(now=NOW)
    world.deregister(world.prod, arn)
    event = cloudtrail_event(PROD, None, name=arn)
    note = handlers.on_task_definition_deregistered(
        SimpleNamespace(payload=event, actor="webhook:sns")
    )
    assert digest[:19] in note
    assert DeletionCheck.objects.filter(image__digest=digest).exists()


def test_mixed_events_name_both_the_scheduled_and_the_ignored_images(world):
    world.repository("web")
    world.push("web", "v1")
    arn = world.register(
        world.prod,
        "mix",
        [uri("web", ":v1"), "111111111111.dkr.ecr.eu-west-1.amazonaws.com/other:1"],
    )
    actions.do_sync_inventory(now=NOW)
    note = handlers.on_task_definition_deregistered(
        SimpleNamespace(
            payload=cloudtrail_event(PROD, world.deregister(world.prod, arn)),
            actor="webhook:eventbridge",
        )
    )
    assert "scheduled checks for" in note
    assert (
        "image 111111111111.dkr.ecr.eu-west-1.amazonaws.com/other:1 is not in a registered opted-in repository"
        in note
    )


def test_a_config_change_to_inactive_schedules_a_check(world):
    world.repository("web")
    digest = world.push("web", "v1")
    actions.do_sync_inventory(now=NOW)
    configuration = {
        "TaskDefinitionArn": f"arn:aws:ecs:{REGION}:{PROD}:task-definition/web:3",
        "Status": "INACTIVE",
        "ContainerDefinitions": [{"Name": "app", "Image": uri("web", ":v1")}],
    }
    note = handlers.on_config_item_change(
        SimpleNamespace(payload=config_event(PROD, configuration), actor="webhook:eventbridge")
    )
    assert "scheduled" in note
    assert DeletionCheck.objects.get(image__digest=digest).trigger_ref.endswith("web:3")


@pytest.mark.parametrize(
    ("resource_type", "status", "reason"),
    [
        ("AWS::S3::Bucket", "ACTIVE", "does not concern"),
        ("AWS::ECS::TaskDefinition", "ACTIVE", "is not INACTIVE"),
    ],
)
def test_other_config_changes_are_ignored(db, resource_type, status, reason):
    event = config_event(PROD, {"Status": status}, resource_type=resource_type)
    with pytest.raises(registry.Ignored, match=reason):
        handlers.on_config_item_change(SimpleNamespace(payload=event, actor="webhook:eventbridge"))


def test_handlers_are_registered_with_the_inbox():
    assert (
        registry.handler_for(registry.TASK_DEFINITION_DEREGISTERED)
        is handlers.on_task_definition_deregistered
    )
    assert registry.handler_for(registry.CONFIG_ITEM_CHANGE) is handlers.on_config_item_change
