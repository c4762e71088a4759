"""A small multi-account AWS in moto: a shared registry and two workload accounts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from accounts import aws as accounts_aws
from cleanup import usage

REGISTRY, PROD, DEV = "111111111111", "222222222222", "333333333333"
REGION = "eu-west-1"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def uri(repo: str, ref: str = "") -> str:
    return f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/{repo}{ref}"


@dataclass
class World:
    registry: object
    prod: object
    dev: object
    counter: int = 0
    clusters: dict = field(default_factory=dict)

    def client(self, account, service):
        return accounts_aws.client(account, REGION, service)

    def repository(self, name: str, *, opted_in: bool = True, mutability: str = "MUTABLE") -> str:
        ecr = self.client(self.registry, "ecr")
        tags = [{"Key": "ecr-cleanup", "Value": "enabled"}] if opted_in else []
        answer = ecr.create_repository(
            repositoryName=name, imageTagMutability=mutability, tags=tags
        )
        return answer["repository"]["repositoryArn"]

    def push(
        self,
        repo: str,
        tag: str | None = None,
        *,
        manifest: dict | None = None,
        media_type: str = MANIFEST,
    ) -> str:
        self.counter += 1
        manifest = manifest or {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1000 + self.counter,
                "digest": f"sha256:{self.counter:064x}",
            },
            "layers": [],
        }
        body = json.dumps(manifest)
        digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        params = {
            "repositoryName": repo,
            "imageManifest": body,
            "imageDigest": digest,
            "imageManifestMediaType": media_type,
        }
        if tag:
            params["imageTag"] = tag
        self.client(self.registry, "ecr").put_image(**params)
        return digest

    def push_index(self, repo: str, tag: str, children: list[str]) -> str:
        manifest = {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [
                {
                    "mediaType": MANIFEST,
                    "digest": child,
                    "size": 500,
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for child, arch in zip(children, ["amd64", "arm64", "s390x"], strict=False)
            ],
        }
        return self.push(repo, tag, manifest=manifest, media_type=INDEX)

    def retag(self, repo: str, digest: str, tag: str) -> None:
        ecr = self.client(self.registry, "ecr")
        image = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": digest}])[
            "images"
        ][0]
        ecr.put_image(
            repositoryName=repo,
            imageManifest=image["imageManifest"],
            imageTag=tag,
            imageDigest=digest,
        )

    def register(self, account, family: str, images: list[str]) -> str:
        ecs = self.client(account, "ecs")
        answer = ecs.register_task_definition(
            family=family,
            containerDefinitions=[
                {"name": f"c{i}", "image": image, "memory": 128} for i, image in enumerate(images)
            ],
        )
        return answer["taskDefinition"]["taskDefinitionArn"]

    def deregister(self, account, arn: str) -> dict:
        answer = self.client(account, "ecs").deregister_task_definition(taskDefinition=arn)
        return answer["taskDefinition"]

    def service(self, account, name: str, task_definition: str) -> None:
        ec2 = self.client(account, "ec2")
        ecs = self.client(account, "ecs")
        if account.account_id not in self.clusters:
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
            group = ec2.create_security_group(GroupName="svc", Description="svc", VpcId=vpc)[
                "GroupId"
            ]
            ecs.create_cluster(clusterName="main")
            self.clusters[account.account_id] = (subnet, group)
        subnet, group = self.clusters[account.account_id]
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

    def ecr_digests(self, repo: str) -> set[str]:
        images = self.client(self.registry, "ecr").describe_images(repositoryName=repo)[
            "imageDetails"
        ]
        return {image["imageDigest"] for image in images}


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_loader():
    """Each account has its own botocore session, and each session parses the service models
    again (about 1 s a test). The models never change: share one loader in these tests."""
    import botocore.loaders
    import botocore.session

    loaders: dict = {}
    real = botocore.session.create_loader

    def shared(search_path_string=None):
        if search_path_string not in loaders:
            loaders[search_path_string] = real(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = shared
    yield
    botocore.session.create_loader = real


def age(repo: str, digest: str, pushed_at: datetime) -> None:
    """Set an image's push time in moto (it stores whole seconds, so pushes in a test tie)."""
    from moto.ecr.models import ecr_backends

    for image in ecr_backends[REGISTRY][REGION].repositories[repo].images:
        if image.get_image_digest() == digest:
            image.image_pushed_at = int(pushed_at.timestamp())


@pytest.fixture
def world(aws, make_account, settings):
    settings.CLEANUP_GRACE_PERIOD = __import__("datetime").timedelta(0)
    settings.CLEANUP_REQUIRE_APPROVAL = True
    settings.CLEANUP_DRY_RUN = False
    settings.CLEANUP_OPT_IN_TAG = ("ecr-cleanup", "enabled")
    usage.clear_caches()
    registry = make_account(REGISTRY, "shared", is_registry=True, environment="shared")
    prod = make_account(PROD, "production")
    dev = make_account(DEV, "development", environment="dev")
    yield World(registry, prod, dev)
    usage.clear_caches()


def cloudtrail_event(
    account_id: str, task_definition: dict | None, name: str = "", event_id: str = "e-1"
) -> dict:
    detail = {
        "eventSource": "ecs.amazonaws.com",
        "eventName": "DeregisterTaskDefinition",
        "awsRegion": REGION,
        "recipientAccountId": account_id,
        "requestParameters": {
            "taskDefinition": name or (task_definition or {}).get("taskDefinitionArn", "")
        },
    }
    if task_definition is not None:
        detail["responseElements"] = {
            "taskDefinition": json.loads(json.dumps(task_definition, default=str))
        }
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecs",
        "account": account_id,
        "time": "2026-11-27T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": detail,
    }
