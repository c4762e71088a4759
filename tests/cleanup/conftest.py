"""A small multi-account AWS in moto: a shared registry and two workload accounts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from accounts import aws as accounts_aws
from cleanup import usage
from scenarios import clients, ecr, ecs, moto_patches

REGISTRY, PROD, DEV = "111111111111", "222222222222", "333333333333"
REGION = "eu-west-1"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def uri(repo: str, ref: str = "") -> str:
    return ecr.image_uri(REGISTRY, REGION, repo, ref)


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
        return ecr.create_repository(
            self.client(self.registry, "ecr"), name, opted_in=opted_in, mutability=mutability
        )

    def push(self, repo: str, tag: str | None = None, *, manifest: dict | None = None) -> str:
        """Push a new image (each push a different one, unless ``manifest`` is given)."""
        self.counter += 1
        manifest = manifest or ecr.image_manifest(str(self.counter), size=1000 + self.counter)
        return ecr.push_image(self.client(self.registry, "ecr"), repo, tag, manifest=manifest)

    def push_index(self, repo: str, tag: str, children: list[str]) -> str:
        return ecr.push_index(self.client(self.registry, "ecr"), repo, tag, children)

    def retag(self, repo: str, digest: str, tag: str) -> None:
        ecr.retag(self.client(self.registry, "ecr"), repo, digest, tag)

    def register(self, account, family: str, images: list[str]) -> str:
        return ecs.register_task_definition(self.client(account, "ecs"), family, images)

    def deregister(self, account, arn: str) -> dict:
        answer = self.client(account, "ecs").deregister_task_definition(taskDefinition=arn)
        return answer["taskDefinition"]

    def service(self, account, name: str, task_definition: str) -> None:
        if account.account_id not in self.clusters:
            self.clusters[account.account_id] = ecs.cluster_with_network(
                clients.for_account(account, REGION)
            )
        cluster = self.clusters[account.account_id]
        ecs.fargate_service(self.client(account, "ecs"), cluster, name, task_definition)

    def ecr_digests(self, repo: str) -> set[str]:
        return ecr.image_digests(self.client(self.registry, "ecr"), repo)


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
    moto_patches.set_image_pushed_at(REGISTRY, REGION, repo, digest, pushed_at)


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
