"""The usage sources in every account: ECS, Lambda (every version), AWS Batch, App Runner and an
AWS Config aggregator. A missing resource is a normal answer; anything else raises."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accounts.models import AwsAccount

from cleanup.aws.common import (
    CleanupAwsError,
    FunctionImage,
    FunctionSummary,
    ServiceInfo,
    TaskInfo,
    _client,
    _errors,
)

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
