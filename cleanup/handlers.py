"""Inbound events that schedule deletion checks: CloudTrail ``DeregisterTaskDefinition`` /
``DeleteTaskDefinitions`` and AWS Config item changes of task definitions to INACTIVE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cleanup import actions
from webhooks import registry

if TYPE_CHECKING:
    from webhooks.models import InboundEvent


def _container_images(
    definition: dict[str, Any], key: str = "containerDefinitions", image: str = "image"
) -> list[str]:
    return [c[image] for c in definition.get(key) or [] if isinstance(c, dict) and c.get(image)]


def on_task_definition_deregistered(event: InboundEvent) -> str:
    payload = event.payload
    detail = payload.get("detail") or {}
    account_id = str(detail.get("recipientAccountId") or payload.get("account") or "")
    region = str(payload.get("region") or detail.get("awsRegion") or "")
    request = detail.get("requestParameters") or {}
    response = detail.get("responseElements") or {}
    definitions: list[tuple[str, list[str] | None]] = []
    described = []
    if isinstance(response.get("taskDefinition"), dict):
        described.append(response["taskDefinition"])
    described += [d for d in response.get("taskDefinitions") or [] if isinstance(d, dict)]
    for definition in described:
        arn = definition.get("taskDefinitionArn") or request.get("taskDefinition", "")
        definitions.append((arn, _container_images(definition)))
    if not definitions:
        # The event did not carry the revision: describe it (INACTIVE revisions stay describable).
        names = (
            [request["taskDefinition"]]
            if request.get("taskDefinition")
            else list(request.get("taskDefinitions") or [])
        )
        definitions = [(name, None) for name in names]
    if not definitions:
        raise registry.Ignored("the event names no task definition")
    outcome = actions.do_schedule_for_inactive_task_definitions(
        account_id=account_id, region=region, definitions=definitions, actor=event.actor
    )
    if not outcome.scheduled:
        raise registry.Ignored(outcome.summary() or "the task definitions use no image")
    return outcome.summary()


def on_config_item_change(event: InboundEvent) -> str:
    detail = event.payload.get("detail") or {}
    item = detail.get("configurationItem") or {}
    if item.get("resourceType") != "AWS::ECS::TaskDefinition":
        raise registry.Ignored(
            f"a {item.get('resourceType', 'unknown')} change does not concern image cleanup"
        )
    configuration = item.get("configuration") or {}
    status = str(configuration.get("Status") or configuration.get("status") or "").upper()
    deleted = item.get("configurationItemStatus") in {
        "ResourceDeleted",
        "ResourceDeletedNotRecorded",
    }
    if status != "INACTIVE" and not deleted:
        raise registry.Ignored(f"task definition status {status or 'unknown'} is not INACTIVE")
    arn = configuration.get("TaskDefinitionArn") or item.get("ARN") or item.get("resourceId", "")
    images = _container_images(configuration, "ContainerDefinitions", "Image") or None
    outcome = actions.do_schedule_for_inactive_task_definitions(
        account_id=str(item.get("awsAccountId") or event.payload.get("account") or ""),
        region=str(item.get("awsRegion") or event.payload.get("region") or ""),
        definitions=[(arn, images)],
        actor=event.actor,
    )
    if not outcome.scheduled:
        raise registry.Ignored(outcome.summary() or "the task definition uses no image")
    return outcome.summary()
