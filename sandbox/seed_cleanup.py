"""Sandbox data of the ECR cleanup: repositories in the shared registry, task definitions in
production and development that use their images by tag and by digest, some revisions already
deregistered, a service still running a deregistered revision; then the console's own sync,
event scheduling, decisions and sweep, so a newcomer sees checks, evidence and approvals at once."""

from __future__ import annotations

from datetime import timedelta

from cleanup import actions
from cleanup.models import CleanupAction, Repository
from console import clock
from sandbox import aws
from scenarios import ecr, ecs

ACTOR = "sandbox"
REGISTRY = aws.SHARED.account_id
PRODUCTION = aws.PRODUCTION.account_id
DEVELOPMENT = aws.DEVELOPMENT.account_id
REGION = aws.DEMO_REGION


def image_uri(repository: str, ref: str) -> str:
    return ecr.image_uri(REGISTRY, REGION, repository, ref)


def _image(client, repository: str, tag: str | None, seed: str, size: int) -> str:
    manifest = ecr.image_manifest(f"{repository}/{seed}", size)
    return ecr.push_image(client, repository, tag, manifest=manifest, exist_ok=True)


def _registry() -> dict[str, str]:
    client = aws.client(REGISTRY, "ecr")
    ecr.create_repository(client, "shop/web", exist_ok=True)
    ecr.create_repository(client, "shop/api", mutability="IMMUTABLE", exist_ok=True)
    ecr.create_repository(client, "platform/base", opted_in=False, exist_ok=True)
    digests = {}
    for n in range(1, 6):
        digests[f"web:v{n}"] = _image(
            client, "shop/web", f"v{n}", f"v{n}", 40_000_000 + n * 3_000_000
        )
    amd = _image(client, "shop/web", None, "multi-amd64", 52_000_000)
    arm = _image(client, "shop/web", None, "multi-arm64", 49_000_000)
    digests["web:multi"] = ecr.push_index(client, "shop/web", "multi", [amd, arm], exist_ok=True)
    for version in ("1.0.0", "1.0.1", "1.0.2", "1.0.3"):
        digests[f"api:{version}"] = _image(client, "shop/api", version, version, 120_000_000)
    for tag in ("2024.1", "2025.1"):
        _image(client, "platform/base", tag, tag, 300_000_000)
    return digests


def _task_definition(client, family: str, images: list[str]) -> str:
    return ecs.register_task_definition(client, family, images, memory=256, container="app")


def _service(account_id: str, name: str, task_definition: str) -> None:
    cluster = ecs.cluster_with_network(aws.clients(account_id), cidr="10.20.0.0/16")
    ecs.fargate_service(aws.client(account_id, "ecs"), cluster, name, task_definition)


def _workloads(digests: dict[str, str]) -> list[tuple[str, str, list[str]]]:
    """Register the task definitions; returns the deregistered ones as (account, arn, images)."""
    prod, dev = aws.client(PRODUCTION, "ecs"), aws.client(DEVELOPMENT, "ecs")
    deregistered = []
    old = _task_definition(prod, "shop-web", [image_uri("shop/web", ":v1")])
    running_old = _task_definition(prod, "shop-web", [image_uri("shop/web", ":v2")])
    _task_definition(prod, "shop-web", [image_uri("shop/web", ":v3")])
    _service(
        PRODUCTION, "shop-web", running_old
    )  # a service still on a revision deregistered below
    api_old = _task_definition(
        prod, "shop-api", [image_uri("shop/api", "@" + digests["api:1.0.0"])]
    )
    _task_definition(prod, "shop-api", [image_uri("shop/api", ":1.0.1")])
    _task_definition(dev, "shop-web", [image_uri("shop/web", ":v4")])
    _task_definition(dev, "base-multiarch", [image_uri("shop/web", ":multi")])
    api_dev = _task_definition(dev, "shop-api", [image_uri("shop/api", "@" + digests["api:1.0.2"])])
    for account_id, client, arn in [
        (PRODUCTION, prod, old),
        (PRODUCTION, prod, running_old),
        (PRODUCTION, prod, api_old),
        (DEVELOPMENT, dev, api_dev),
    ]:
        definition = client.deregister_task_definition(taskDefinition=arn)["taskDefinition"]
        images = [c["image"] for c in definition["containerDefinitions"]]
        deregistered.append((account_id, arn, images))
    return deregistered


def seed() -> None:
    digests = _registry()
    deregistered = _workloads(digests)
    now = clock.now()
    actions.do_sync_inventory(actor=ACTOR, now=now)
    # shop/api archives instead of deleting: an approved image goes to ECR's archival storage
    # class, and its Restore button (repository page) or `manage.py cleanup restore` brings it back.
    api = Repository.objects.get(account__account_id=REGISTRY, region=REGION, name="shop/api")
    actions.do_update_policy(api, actor=ACTOR, now=now, cleanup_action=CleanupAction.ARCHIVE)
    # As if the deregistrations had arrived as events two days ago: their grace has ended.
    earlier = now - timedelta(days=2)
    for account_id, arn, images in deregistered:
        actions.do_schedule_for_inactive_task_definitions(
            account_id=account_id,
            region=REGION,
            definitions=[(arn, images)],
            actor=ACTOR,
            now=earlier,
        )
    actions.do_run_due_checks(actor=ACTOR, now=now)
    actions.do_sweep(actor=ACTOR, now=now)
