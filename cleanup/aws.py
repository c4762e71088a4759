"""The only module of ``cleanup`` that talks to AWS: ECR in the registry accounts, and the usage
sources (ECS, Lambda, AWS Batch, App Runner, AWS Config) in every account. Returns small dataclasses; raises
``CleanupAwsError``; a missing resource is a normal answer (``None`` or an empty list)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from accounts import aws as accounts_aws
from accounts.aws import AwsError

if TYPE_CHECKING:
    from accounts.models import AwsAccount

MAX_DELETE_BATCH = 100


class CleanupAwsError(AwsError):
    """An ECR, ECS, Lambda or Config call that did not answer."""


@dataclass(frozen=True)
class RepositoryInfo:
    name: str
    arn: str
    uri: str
    tag_mutability: str
    tags: dict[str, str]


@dataclass(frozen=True)
class ImageInfo:
    digest: str
    tags: list[str]
    pushed_at: datetime | None
    size_bytes: int
    media_type: str
    child_digests: list[str] = field(default_factory=list)
    last_pulled_at: datetime | None = None


@dataclass(frozen=True)
class DeleteOutcome:
    deleted: list[str]
    failures: list[tuple[str, str, str]]  # digest, code, reason


@dataclass(frozen=True)
class ServiceInfo:
    cluster: str
    name: str
    task_definitions: list[str]


@dataclass(frozen=True)
class TaskInfo:
    cluster: str
    task_arn: str
    task_definition_arn: str
    containers: list[tuple[str, str]]  # image, imageDigest ("" when ECS did not report one)


@dataclass(frozen=True)
class FunctionSummary:
    """One version of an image function: ``$LATEST`` or a published version (``arn`` then carries
    the version as its qualifier)."""

    name: str
    arn: str
    code_sha256: str
    last_modified: str
    version: str = "$LATEST"

    @property
    def published(self) -> bool:
        return self.version != "$LATEST"


@dataclass(frozen=True)
class FunctionImage:
    image_uri: str
    resolved_uri: str


def _client(account: AwsAccount, region: str, service: str) -> Any:
    return accounts_aws.client(account, region, service)


def _errors(account: AwsAccount) -> AbstractContextManager[None]:
    return accounts_aws.translated_errors(account.account_id, CleanupAwsError)


def _is_not_found(exc: CleanupAwsError) -> bool:
    return exc.code in {"RepositoryNotFoundException", "ImageNotFoundException"}


# ECR --------------------------------------------------------------------------------------------


def list_repositories(account: AwsAccount, region: str) -> list[RepositoryInfo]:
    ecr = _client(account, region, "ecr")
    found = []
    with _errors(account):
        for page in ecr.get_paginator("describe_repositories").paginate():
            for repo in page["repositories"]:
                tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", [])
                found.append(
                    RepositoryInfo(
                        name=repo["repositoryName"],
                        arn=repo["repositoryArn"],
                        uri=repo["repositoryUri"],
                        tag_mutability=repo.get("imageTagMutability", "MUTABLE"),
                        tags={tag["Key"]: tag["Value"] for tag in tags},
                    )
                )
    return found


def repository_tags(account: AwsAccount, region: str, arn: str) -> dict[str, str] | None:
    """The repository's tags now, or None when the repository no longer exists."""
    try:
        with _errors(account):
            tags = (
                _client(account, region, "ecr")
                .list_tags_for_resource(resourceArn=arn)
                .get("tags", [])
            )
    except CleanupAwsError as exc:
        if _is_not_found(exc) or "not found" in str(exc).lower():
            return None
        raise
    return {tag["Key"]: tag["Value"] for tag in tags}


def set_repository_tag(account: AwsAccount, region: str, arn: str, key: str, value: str) -> None:
    with _errors(account):
        _client(account, region, "ecr").tag_resource(
            resourceArn=arn, tags=[{"Key": key, "Value": value}]
        )


def remove_repository_tag(account: AwsAccount, region: str, arn: str, key: str) -> None:
    with _errors(account):
        _client(account, region, "ecr").untag_resource(resourceArn=arn, tagKeys=[key])


def replication_destinations(account: AwsAccount, region: str) -> list[dict[str, Any]]:
    """Replication rules of the registry (deletes may propagate to replicas)."""
    with _errors(account):
        answer = _client(account, region, "ecr").describe_registry()
    rules = answer.get("replicationConfiguration", {}).get("rules", [])
    return [
        {
            "destinations": rule.get("destinations", []),
            "filters": rule.get("repositoryFilters", []),
        }
        for rule in rules
    ]


def describe_images(account: AwsAccount, region: str, repository: str) -> list[ImageInfo] | None:
    """Every image of the repository, with the children of image indexes; None when the
    repository does not exist."""
    ecr = _client(account, region, "ecr")
    found = []
    try:
        with _errors(account):
            for page in ecr.get_paginator("describe_images").paginate(repositoryName=repository):
                found.extend(page["imageDetails"])
    except CleanupAwsError as exc:
        if _is_not_found(exc):
            return None
        raise
    indexes = [d["imageDigest"] for d in found if _is_index(d.get("imageManifestMediaType", ""))]
    children = _index_children(account, ecr, repository, indexes)
    return [
        ImageInfo(
            digest=d["imageDigest"],
            tags=sorted(d.get("imageTags", [])),
            pushed_at=d.get("imagePushedAt"),
            size_bytes=int(d.get("imageSizeInBytes", 0)),
            media_type=d.get("imageManifestMediaType", ""),
            child_digests=children.get(d["imageDigest"], []),
            last_pulled_at=d.get("lastRecordedPullTime"),
        )
        for d in found
    ]


def _is_index(media_type: str) -> bool:
    from cleanup.models import INDEX_MEDIA_TYPES

    return media_type in INDEX_MEDIA_TYPES


def _index_children(
    account: AwsAccount, ecr: Any, repository: str, digests: list[str]
) -> dict[str, list[str]]:
    from cleanup.models import INDEX_MEDIA_TYPES

    children: dict[str, list[str]] = {}
    for start in range(0, len(digests), MAX_DELETE_BATCH):
        chunk = digests[start : start + MAX_DELETE_BATCH]
        with _errors(account):
            answer = ecr.batch_get_image(
                repositoryName=repository,
                imageIds=[{"imageDigest": digest} for digest in chunk],
                acceptedMediaTypes=sorted(INDEX_MEDIA_TYPES),
            )
        for image in answer.get("images", []):
            try:
                manifest = json.loads(image.get("imageManifest", "{}"))
            except ValueError:
                continue
            digest = image["imageId"]["imageDigest"]
            children[digest] = [m["digest"] for m in manifest.get("manifests", []) if "digest" in m]
    return children


def batch_delete_images(
    account: AwsAccount, region: str, repository: str, digests: list[str]
) -> DeleteOutcome:
    """One ``BatchDeleteImage`` call, by digest only. Per-image problems come back as failures."""
    if len(digests) > MAX_DELETE_BATCH:
        raise ValueError(
            f"BatchDeleteImage takes at most {MAX_DELETE_BATCH} ids, got {len(digests)}"
        )
    with _errors(account):
        answer = _client(account, region, "ecr").batch_delete_image(
            repositoryName=repository, imageIds=[{"imageDigest": digest} for digest in digests]
        )
    failures = [
        (
            failure.get("imageId", {}).get("imageDigest", ""),
            failure.get("failureCode", ""),
            failure.get("failureReason", ""),
        )
        for failure in answer.get("failures", [])
    ]
    failed = {digest for digest, _, _ in failures}
    # moto answers an empty imageIds for untagged images: what did not fail was deleted.
    deleted = [digest for digest in digests if digest not in failed]
    return DeleteOutcome(deleted=deleted, failures=failures)


# ECS --------------------------------------------------------------------------------------------


def list_active_task_definitions(account: AwsAccount, region: str) -> list[str]:
    ecs = _client(account, region, "ecs")
    arns: list[str] = []
    with _errors(account):
        for page in ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE"):
            arns.extend(page["taskDefinitionArns"])
    return arns


def describe_task_definition(
    account: AwsAccount, region: str, task_definition: str
) -> tuple[str, list[str]] | None:
    """(ARN, container images) of a revision, ACTIVE or INACTIVE; None when it does not exist."""
    try:
        with _errors(account):
            answer = _client(account, region, "ecs").describe_task_definition(
                taskDefinition=task_definition
            )
    except CleanupAwsError as exc:
        if exc.code in {"ClientException", "InvalidParameterException"}:
            return None
        raise
    definition = answer["taskDefinition"]
    images = [c["image"] for c in definition.get("containerDefinitions", []) if c.get("image")]
    return definition["taskDefinitionArn"], images


def list_clusters(account: AwsAccount, region: str) -> list[str]:
    clusters: list[str] = []
    with _errors(account):
        for page in _client(account, region, "ecs").get_paginator("list_clusters").paginate():
            clusters.extend(page["clusterArns"])
    return clusters


def list_services(account: AwsAccount, region: str, clusters: list[str]) -> list[ServiceInfo]:
    """Every service of every cluster with the task definitions of all its deployments."""
    ecs = _client(account, region, "ecs")
    found = []
    with _errors(account):
        for cluster in clusters:
            arns: list[str] = []
            for page in ecs.get_paginator("list_services").paginate(
                cluster=cluster, maxResults=100
            ):
                arns.extend(page["serviceArns"])
            for start in range(0, len(arns), 10):
                answer = ecs.describe_services(cluster=cluster, services=arns[start : start + 10])
                for service in answer["services"]:
                    definitions = [d["taskDefinition"] for d in service.get("deployments", [])]
                    if service.get("taskDefinition"):
                        definitions.append(service["taskDefinition"])
                    found.append(
                        ServiceInfo(
                            cluster=cluster.rsplit("/", 1)[-1],
                            name=service["serviceName"],
                            task_definitions=sorted(set(definitions)),
                        )
                    )
    return found


def list_running_tasks(account: AwsAccount, region: str, clusters: list[str]) -> list[TaskInfo]:
    ecs = _client(account, region, "ecs")
    found = []
    with _errors(account):
        for cluster in clusters:
            arns: list[str] = []
            for page in ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, desiredStatus="RUNNING"
            ):
                arns.extend(page["taskArns"])
            for start in range(0, len(arns), 100):
                answer = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])
                for task in answer["tasks"]:
                    found.append(
                        TaskInfo(
                            cluster=cluster.rsplit("/", 1)[-1],
                            task_arn=task["taskArn"],
                            task_definition_arn=task.get("taskDefinitionArn", ""),
                            containers=[
                                (c.get("image", ""), c.get("imageDigest", ""))
                                for c in task.get("containers", [])
                            ],
                        )
                    )
    return found


# Lambda -----------------------------------------------------------------------------------------


def list_image_functions(account: AwsAccount, region: str) -> list[FunctionSummary]:
    """Every version of every image function: ``$LATEST`` and each published version, which
    aliases, provisioned concurrency and qualified mappings point at, and which keeps the digest
    it was published with (``ListFunctions`` with ``FunctionVersion=ALL``)."""
    found = []
    paginator = _client(account, region, "lambda").get_paginator("list_functions")
    with _errors(account):
        for page in paginator.paginate(FunctionVersion="ALL"):
            for function in page["Functions"]:
                if function.get("PackageType") == "Image":
                    found.append(
                        FunctionSummary(
                            name=function["FunctionName"],
                            arn=function["FunctionArn"],
                            code_sha256=function.get("CodeSha256", ""),
                            last_modified=function.get("LastModified", ""),
                            version=function.get("Version") or "$LATEST",
                        )
                    )
    return found


def function_image(
    account: AwsAccount, region: str, name: str, version: str = "$LATEST"
) -> FunctionImage | None:
    """The image of one version of a function (``GetFunction`` with that ``Qualifier``)."""
    try:
        with _errors(account):
            code = (
                _client(account, region, "lambda")
                .get_function(FunctionName=name, Qualifier=version)
                .get("Code", {})
            )
    except CleanupAwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise
    return FunctionImage(
        image_uri=code.get("ImageUri", ""), resolved_uri=code.get("ResolvedImageUri", "")
    )


# AWS Batch and App Runner ----------------------------------------------------------------------


def list_batch_images(account: AwsAccount, region: str) -> list[tuple[str, str]]:
    """(job definition name:revision, image) of every container of every ACTIVE job definition:
    container, multi-node, ECS and EKS properties alike."""
    found: list[tuple[str, str]] = []
    paginator = _client(account, region, "batch").get_paginator("describe_job_definitions")
    with _errors(account):
        for page in paginator.paginate(status="ACTIVE"):
            for definition in page.get("jobDefinitions", []):
                where = (
                    f"{definition.get('jobDefinitionName', '?')}:{definition.get('revision', '?')}"
                )
                found.extend((where, image) for image in _batch_images(definition))
    return found


def _batch_images(definition: dict[str, Any]) -> list[str]:
    containers: list[dict[str, Any]] = [definition.get("containerProperties") or {}]
    for node_range in (definition.get("nodeProperties") or {}).get("nodeRangeProperties", []):
        containers.append(node_range.get("container") or {})
        containers += _ecs_containers(node_range.get("ecsProperties"))
        containers += _eks_containers(node_range.get("eksProperties"))
    containers += _ecs_containers(definition.get("ecsProperties"))
    containers += _eks_containers(definition.get("eksProperties"))
    return [container["image"] for container in containers if container.get("image")]


def _ecs_containers(properties: dict[str, Any] | None) -> list[dict[str, Any]]:
    tasks = (properties or {}).get("taskProperties", [])
    return [container for task in tasks for container in task.get("containers", [])]


def _eks_containers(properties: dict[str, Any] | None) -> list[dict[str, Any]]:
    pod = (properties or {}).get("podProperties") or {}
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def list_apprunner_images(account: AwsAccount, region: str) -> list[tuple[str, str]]:
    """(service name, image) of every App Runner service deployed from an image (any status but
    DELETED: a paused service resumes on the image it has)."""
    apprunner = _client(account, region, "apprunner")
    found = []
    token = ""
    with _errors(account):
        while True:
            answer = apprunner.list_services(**({"NextToken": token} if token else {}))
            for summary in answer.get("ServiceSummaryList", []):
                if summary.get("Status") == "DELETED":
                    continue
                service = apprunner.describe_service(ServiceArn=summary["ServiceArn"])["Service"]
                source = service.get("SourceConfiguration") or {}
                image = (source.get("ImageRepository") or {}).get("ImageIdentifier", "")
                if image:
                    found.append(
                        (service.get("ServiceName", summary.get("ServiceName", "?")), image)
                    )
            token = answer.get("NextToken", "")
            if not token:
                return found


# AWS Config -------------------------------------------------------------------------------------


def select_aggregate(
    account: AwsAccount, region: str, aggregator: str, expression: str
) -> list[dict[str, Any]]:
    """Every result of an advanced query on the aggregator (results are JSON strings)."""
    config = _client(account, region, "config")
    results: list[dict[str, Any]] = []
    token = ""
    with _errors(account):
        while True:
            params: dict[str, Any] = {
                "Expression": expression,
                "ConfigurationAggregatorName": aggregator,
                "Limit": 100,
            }
            if token:
                params["NextToken"] = token
            answer = config.select_aggregate_resource_config(**params)
            results.extend(json.loads(row) for row in answer.get("Results", []))
            token = answer.get("NextToken", "")
            if not token:
                return results
