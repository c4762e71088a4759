"""The usage sources: what each reads in one account and region, and the caches that make a
warm snapshot cost list calls only (task definitions and published Lambda versions never change)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeAlias

from accounts.models import AwsAccount
from cleanup import aws
from cleanup.models import FunctionVersionImage, TaskDefinitionImages
from cleanup.usage.references import (
    CONFIG_EXPRESSION_LIMIT,
    SOURCE_APPRUNNER,
    SOURCE_BATCH,
    SOURCE_CONFIG,
    SOURCE_LAMBDA,
    SOURCE_SERVICES,
    SOURCE_TASK_DEFINITIONS,
    SOURCE_TASKS,
    Reference,
    Unreadable,
    parse_image,
    shared_key,
    shared_text,
    unreadable_accounts,
)

# What a source makes of one image string: a reference, an unreadable one, or None (another
# registry's image).
Found: TypeAlias = Reference | Unreadable | None
Clusters: TypeAlias = Callable[[], list[str]]  # the region's ECS clusters, listed at most once
# How a source is asked: (account, region, now, clusters) -> what it found.
Source: TypeAlias = Callable[[AwsAccount, str, datetime, Clusters], list[Found]]


# Caches ------------------------------------------------------------------------------------------

_lock = threading.Lock()
_task_definition_images: dict[str, list[str]] = {}
_function_images: dict[str, aws.FunctionImage] = {}


def clear_caches(*, database: bool = False) -> None:
    with _lock:
        _task_definition_images.clear()
        _function_images.clear()
    if database:
        TaskDefinitionImages.objects.all().delete()
        FunctionVersionImage.objects.all().delete()


def task_definition_images(
    account: AwsAccount, region: str, arns: Iterable[str], now: datetime
) -> dict[str, list[str]]:
    """Container images by task definition ARN: the process cache, then the shared table, then
    ``DescribeTaskDefinition`` for what nobody has seen yet (revisions never change)."""
    wanted = set(arns)
    with _lock:
        found = {
            arn: _task_definition_images[arn] for arn in wanted if arn in _task_definition_images
        }
    missing = sorted(wanted - found.keys())
    for start in range(0, len(missing), 500):
        for row in TaskDefinitionImages.objects.filter(arn__in=missing[start : start + 500]):
            found[row.arn] = row.images
    fetched = []
    for arn in sorted(wanted - found.keys()):
        answer = aws.describe_task_definition(account, region, arn)
        images = answer[1] if answer else []
        found[arn] = images
        if answer:
            fetched.append(TaskDefinitionImages(arn=arn, images=images, fetched_at=now))
    if fetched:
        TaskDefinitionImages.objects.bulk_create(fetched, ignore_conflicts=True, batch_size=500)
    with _lock:
        _task_definition_images.update(found)
    return found


def _function_key(function: aws.FunctionSummary) -> str:
    """A published version never changes: its qualified ARN is enough. ``$LATEST`` changes with
    every code update, so its code hash and modification time are part of the key."""
    if function.published:
        return function.arn
    return f"{function.arn}:$LATEST:{function.code_sha256}:{function.last_modified}"


def function_images(
    account: AwsAccount, region: str, functions: list[aws.FunctionSummary], now: datetime
) -> dict[str, aws.FunctionImage]:
    """Images by ``_function_key``: the process cache, then the shared table, then
    ``GetFunction`` with the version's qualifier for what nobody has seen yet. A version deleted
    meanwhile is left out (it no longer runs)."""
    wanted = {_function_key(function): function for function in functions}
    with _lock:
        found = {key: _function_images[key] for key in wanted if key in _function_images}
    missing = sorted(wanted.keys() - found.keys())
    for start in range(0, len(missing), 500):
        for row in FunctionVersionImage.objects.filter(key__in=missing[start : start + 500]):
            found[row.key] = aws.FunctionImage(row.image_uri, row.resolved_uri)
    fetched = []
    for key in sorted(wanted.keys() - found.keys()):
        function = wanted[key]
        image = aws.function_image(account, region, function.name, function.version)
        if image is None:
            continue
        found[key] = image
        fetched.append(
            FunctionVersionImage(
                key=key,
                image_uri=image.image_uri[:1024],
                resolved_uri=image.resolved_uri[:1024],
                fetched_at=now,
            )
        )
    if fetched:
        FunctionVersionImage.objects.bulk_create(fetched, ignore_conflicts=True, batch_size=500)
    with _lock:
        _function_images.update(found)
    return found


# Sources -----------------------------------------------------------------------------------------


def _family_revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def reference(
    source: str,
    account: AwsAccount,
    region: str,
    where: str,
    image: str,
    *,
    digest: str | None = None,
) -> Found:
    """The reference ``image`` makes; an ``Unreadable`` when it names an account's registry but
    cannot be parsed (fail closed); None for another registry."""
    ref = parse_image(image)
    if ref is None:
        named = unreadable_accounts(image)
        if named:
            return Unreadable(source, account.account_id, region, where, image, frozenset(named))
        return None
    digest = digest or ref.digest
    return Reference(
        source=source,
        account_id=account.account_id,
        region=region,
        where=where,
        image=image,
        repository=shared_key(ref.repo_key),
        tag=None if digest else shared_text(ref.tag),
        digest=shared_text(digest),
    )


def _task_definitions_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    arns = aws.list_active_task_definitions(account, region)
    images = task_definition_images(account, region, arns, now)
    refs: list[Found] = []
    for arn in arns:
        for image in images.get(arn, []):
            refs.append(
                reference(
                    SOURCE_TASK_DEFINITIONS,
                    account,
                    region,
                    f"task definition {_family_revision(arn)}",
                    image,
                )
            )
    return refs


def _services_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    services = aws.list_services(account, region, clusters())
    arns = {arn for service in services for arn in service.task_definitions}
    images = task_definition_images(account, region, arns, now)
    refs: list[Found] = []
    for service in services:
        for arn in service.task_definitions:
            where = f"service {service.cluster}/{service.name} ({_family_revision(arn)})"
            for image in images.get(arn, []):
                refs.append(reference(SOURCE_SERVICES, account, region, where, image))
    return refs


def _tasks_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    refs: list[Found] = []
    for task in aws.list_running_tasks(account, region, clusters()):
        where = f"task {task.cluster}/{task.task_arn.rsplit('/', 1)[-1]} ({_family_revision(task.task_definition_arn)})"
        for image, digest in task.containers:
            # ECS pinned the digest when the task started: a tag that moved since must not count.
            refs.append(
                reference(SOURCE_TASKS, account, region, where, image, digest=digest or None)
            )
    return refs


def _lambda_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    """Every version of every image function: aliases and provisioned concurrency point at
    published versions, and each keeps the digest it was published with."""
    functions = aws.list_image_functions(account, region)
    images = function_images(account, region, functions, now)
    refs: list[Found] = []
    for function in functions:
        image = images.get(_function_key(function))
        if image is None:
            continue
        where = f"Lambda function {function.name}:{function.version}"
        refs.append(reference(SOURCE_LAMBDA, account, region, where, image.image_uri))
        resolved = parse_image(image.resolved_uri)
        digest = resolved.digest if resolved else None
        if (
            not digest
            and function.code_sha256
            and re.fullmatch(r"[0-9a-f]{64}", function.code_sha256)
        ):
            digest = f"sha256:{function.code_sha256}"
        if digest:
            refs.append(
                reference(SOURCE_LAMBDA, account, region, where, image.image_uri, digest=digest)
            )
    return refs


def _batch_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    return [
        reference(SOURCE_BATCH, account, region, f"Batch job definition {where}", image)
        for where, image in aws.list_batch_images(account, region)
    ]


def _apprunner_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    return [
        reference(SOURCE_APPRUNNER, account, region, f"App Runner service {where}", image)
        for where, image in aws.list_apprunner_images(account, region)
    ]


# (source, the AWS service it reads, how): asked in every usage region of every enabled account.
ACCOUNT_SOURCES: list[tuple[str, str, Source]] = [
    (SOURCE_TASK_DEFINITIONS, "ecs", _task_definitions_source),
    (SOURCE_SERVICES, "ecs", _services_source),
    (SOURCE_TASKS, "ecs", _tasks_source),
    (SOURCE_LAMBDA, "lambda", _lambda_source),
    (SOURCE_BATCH, "batch", _batch_source),
    (SOURCE_APPRUNNER, "apprunner", _apprunner_source),
]
SKIPPABLE_SOURCES = frozenset(name for name, _, _ in ACCOUNT_SOURCES)


def config_expressions(uris: list[str]) -> list[str]:
    """Advanced queries for ACTIVE task definitions using any of ``uris``, each at most 4,096
    characters."""
    head = (
        "SELECT accountId, awsRegion, configuration.TaskDefinitionArn, configuration.ContainerDefinitions "
        "WHERE resourceType = 'AWS::ECS::TaskDefinition' AND configuration.Status = 'ACTIVE' "
        "AND configuration.ContainerDefinitions.Image IN ("
    )
    expressions: list[str] = []
    chunk: list[str] = []
    for uri in sorted(set(uris)):
        quoted = "'" + uri.replace("'", "") + "'"
        if chunk and len(head) + len(", ".join([*chunk, quoted])) + 1 > CONFIG_EXPRESSION_LIMIT:
            expressions.append(head + ", ".join(chunk) + ")")
            chunk = []
        chunk.append(quoted)
    if chunk:
        expressions.append(head + ", ".join(chunk) + ")")
    return expressions


def config_source(
    account: AwsAccount, region: str, aggregator: str, uris: list[str]
) -> list[Found]:
    refs: list[Found] = []
    for expression in config_expressions(uris):
        for row in aws.select_aggregate(account, region, aggregator, expression):
            configuration = row.get("configuration", {})
            arn = configuration.get("TaskDefinitionArn", "")
            where = f"Config: task definition {_family_revision(arn)} in {row.get('accountId', '?')}/{row.get('awsRegion', '?')}"
            for container in configuration.get("ContainerDefinitions", []) or []:
                image = container.get("Image") or container.get("image") or ""
                refs.append(reference(SOURCE_CONFIG, account, region, where, image))
    return refs
