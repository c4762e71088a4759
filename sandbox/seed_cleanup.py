"""Sandbox data of the ECR cleanup: repositories in the shared registry, task definitions in
production and development that use their images by tag and by digest, some revisions already
deregistered, a service still running a deregistered revision; then the console's own sync,
event scheduling, decisions and sweep, so a newcomer sees checks, evidence and approvals at once."""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from datetime import timedelta

from cleanup import actions
from console import clock
from sandbox import aws

ACTOR = "sandbox"
REGISTRY = aws.SHARED.account_id
PRODUCTION = aws.PRODUCTION.account_id
DEVELOPMENT = aws.DEVELOPMENT.account_id
REGION = aws.DEMO_REGION
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX = "application/vnd.oci.image.index.v1+json"
OPT_IN = [{"Key": "ecr-cleanup", "Value": "enabled"}]


def image_uri(repository: str, ref: str) -> str:
    return f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/{repository}{ref}"


def _put(ecr, repository: str, manifest: dict, tag: str | None, media_type: str) -> str:
    body = json.dumps(manifest, sort_keys=True)
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    params = {
        "repositoryName": repository,
        "imageManifest": body,
        "imageDigest": digest,
        "imageManifestMediaType": media_type,
    }
    if tag:
        params["imageTag"] = tag
    with suppress(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(**params)
    return digest


def _image(ecr, repository: str, tag: str | None, seed: str, size: int) -> str:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": size,
            "digest": "sha256:" + hashlib.sha256(f"{repository}/{seed}".encode()).hexdigest(),
        },
        "layers": [],
    }
    return _put(ecr, repository, manifest, tag, MANIFEST)


def _repository(ecr, name: str, *, opted_in: bool, immutable: bool = False) -> None:
    with suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(
            repositoryName=name,
            imageTagMutability="IMMUTABLE" if immutable else "MUTABLE",
            tags=OPT_IN if opted_in else [],
        )


def _registry() -> dict[str, str]:
    ecr = aws.client(REGISTRY, "ecr")
    _repository(ecr, "shop/web", opted_in=True)
    _repository(ecr, "shop/api", opted_in=True, immutable=True)
    _repository(ecr, "platform/base", opted_in=False)
    digests = {}
    for n in range(1, 6):
        digests[f"web:v{n}"] = _image(ecr, "shop/web", f"v{n}", f"v{n}", 40_000_000 + n * 3_000_000)
    amd = _image(ecr, "shop/web", None, "multi-amd64", 52_000_000)
    arm = _image(ecr, "shop/web", None, "multi-arm64", 49_000_000)
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": amd,
                "size": 500,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": MANIFEST,
                "digest": arm,
                "size": 500,
                "platform": {"architecture": "arm64", "os": "linux"},
            },
        ],
    }
    digests["web:multi"] = _put(ecr, "shop/web", index, "multi", INDEX)
    for version in ("1.0.0", "1.0.1", "1.0.2", "1.0.3"):
        digests[f"api:{version}"] = _image(ecr, "shop/api", version, version, 120_000_000)
    for tag in ("2024.1", "2025.1"):
        _image(ecr, "platform/base", tag, tag, 300_000_000)
    return digests


def _task_definition(ecs, family: str, images: list[str]) -> str:
    answer = ecs.register_task_definition(
        family=family,
        containerDefinitions=[
            {"name": f"app{i}", "image": image, "memory": 256} for i, image in enumerate(images)
        ],
    )
    return answer["taskDefinition"]["taskDefinitionArn"]


def _service(account_id: str, name: str, task_definition: str) -> None:
    ec2 = aws.client(account_id, "ec2")
    ecs = aws.client(account_id, "ecs")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{name}-svc", Description=name, VpcId=vpc)[
        "GroupId"
    ]
    ecs.create_cluster(clusterName="main")
    ecs.create_service(
        cluster="main",
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=0,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}
        },
    )


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
