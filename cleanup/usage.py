"""Where images are used: a snapshot of every usage source in every enabled account and region,
and the rules that say whether one digest of one repository is referenced.

Fail closed: a source that cannot answer is recorded as an error and the snapshot is incomplete;
callers never read "no reference" from an incomplete snapshot as "unused".
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeAlias, TypeVar

from django.conf import settings

from accounts import actions as account_actions
from accounts import aws as accounts_aws
from accounts.models import AwsAccount
from cleanup import aws
from cleanup.models import FunctionVersionImage, RegistrySettings, TaskDefinitionImages

# Every host form of a private ECR registry: standard, FIPS, dual-stack (IPv6), China, and the
# European Sovereign Cloud. A reference whose host names a 12-digit account but matches none of
# them is "unreadable" and fails the decision closed.
REGISTRY_HOST = re.compile(
    r"(?P<account>[0-9]{12})\.dkr(?:\.ecr|\.ecr-fips|-ecr|-ecr-fips)"
    r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+)"
    r"\.(?:amazonaws\.com|amazonaws\.com\.cn|on\.aws|on\.amazonwebservices\.com\.cn|amazonaws\.eu)"
    r"(?::443)?",  # Docker accepts the port ECR listens on
    re.ASCII,
)
# ECR's own patterns (botocore's service model): repository names 2-256 characters, tags 1-300.
REPOSITORY_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*", re.ASCII
)
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,299}", re.ASCII)
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
ACCOUNT_IN_HOST = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])", re.ASCII)
CONFIG_EXPRESSION_LIMIT = 4096

SOURCE_REGIONS = "enabled_regions"
SOURCE_TASK_DEFINITIONS = "ecs_task_definitions"
SOURCE_SERVICES = "ecs_services"
SOURCE_TASKS = "ecs_running_tasks"
SOURCE_LAMBDA = "lambda_functions"
SOURCE_BATCH = "batch_job_definitions"
SOURCE_APPRUNNER = "apprunner_services"
SOURCE_CONFIG = "config_aggregator"


@dataclass(frozen=True)
class ImageRef:
    """An image URI of the registry, parsed. No tag and no digest means the tag ``latest``."""

    registry: str
    region: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def repo_key(self) -> tuple[str, str, str]:
        return (self.registry, self.region, self.repository)


def parse_image(uri: str) -> ImageRef | None:
    """Parse an ECR image URI in any of its host forms; None for anything else (another
    registry, or a malformed value: see ``unreadable_accounts``)."""
    host, slash, rest = (uri or "").strip().partition("/")
    match = REGISTRY_HOST.fullmatch(host.lower())
    if not match or not slash:
        return None
    rest, at, digest = rest.partition("@")
    if at and not IMAGE_DIGEST.fullmatch(digest):
        return None
    repository, colon, tag = rest.partition(":")
    if colon and not IMAGE_TAG.fullmatch(tag):
        return None
    if not (2 <= len(repository) <= 256 and REPOSITORY_NAME.fullmatch(repository)):
        return None
    return ImageRef(
        match.group("account"),
        match.group("region"),
        repository,
        tag or (None if digest else "latest"),
        digest or None,
    )


def unreadable_accounts(uri: str) -> set[str]:
    """The 12-digit account ids named in the host of an image string that ``parse_image`` could
    not read: if one is a registry's, that registry's images cannot be judged unused."""
    host = (uri or "").strip().partition("/")[0]
    return set(ACCOUNT_IN_HOST.findall(host))


@dataclass(frozen=True)
class Reference:
    """One use of an image found by one source."""

    source: str
    account_id: str
    region: str
    where: str
    image: str
    repository: tuple[str, str, str]
    tag: str | None
    digest: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["repository"] = "/".join(self.repository)
        return data


@dataclass(frozen=True)
class Unreadable:
    """An image string that names an account's registry host but cannot be parsed."""

    source: str
    account_id: str
    region: str
    where: str
    image: str
    registries: frozenset[str]

    def describe(self) -> str:
        return (
            f"{SOURCE_NAMES.get(self.source, self.source)} {self.account_id}/{self.region} "
            f"({self.where}) names registry {', '.join(sorted(self.registries))} "
            f"in an image the console cannot read: {self.image[:300]!r}"
        )


# What a source makes of one image string: a reference, an unreadable one, or None (another
# registry's image).
Found: TypeAlias = Reference | Unreadable | None
Clusters: TypeAlias = Callable[[], list[str]]  # the region's ECS clusters, listed at most once
# How a source is asked: (account, region, now, clusters) -> what it found.
Source: TypeAlias = Callable[[AwsAccount, str, datetime, Clusters], list[Found]]
T = TypeVar("T")


@dataclass
class SourceAnswer:
    source: str
    account_id: str
    region: str
    ok: bool = True
    error: str = ""
    references: int = 0
    note: str = ""


@dataclass
class Snapshot:
    taken_at: datetime
    answers: list[SourceAnswer] = field(default_factory=list)
    by_repository: dict[tuple[str, str, str], list[Reference]] = field(
        default_factory=lambda: defaultdict(list)
    )
    unreadable: list[Unreadable] = field(default_factory=list)
    scope: dict[str, str] = field(default_factory=dict)  # account id -> where usage was read
    skipped: list[str] = field(default_factory=list)  # sources turned off by CLEANUP_SKIP_SOURCES

    @property
    def complete(self) -> bool:
        return all(answer.ok for answer in self.answers)

    @property
    def errors(self) -> list[str]:
        return [
            f"{a.source} {a.account_id}/{a.region}: {a.error}" for a in self.answers if not a.ok
        ] + [item.describe() for item in self.unreadable]

    def unreadable_for(self, registry_id: str) -> list[Unreadable]:
        return [item for item in self.unreadable if registry_id in item.registries]

    # Keyed by (registry, region, repository, digest) and (registry, region, repository, tag).
    _by_digest: dict[tuple[str, str, str, str], list[Reference]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _by_tag: dict[tuple[str, str, str, str | None], list[Reference]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, reference: Reference) -> None:
        self.by_repository[reference.repository].append(reference)
        if reference.digest:
            self._by_digest[(*reference.repository, reference.digest)].append(reference)
        else:
            self._by_tag[(*reference.repository, reference.tag)].append(reference)

    def references_to(
        self, key: tuple[str, str, str], digests: set[str], tags: set[str]
    ) -> list[Reference]:
        """References by digest to any of ``digests``, and by tag to any of ``tags`` (the tags
        that point at those digests now)."""
        found: list[Reference] = []
        for digest in sorted(digests):
            found += self._by_digest.get((*key, digest), [])
        for tag in sorted(tags):
            found += self._by_tag.get((*key, tag), [])
        return found

    def sources_json(self) -> list[dict[str, Any]]:
        return [asdict(answer) for answer in self.answers]

    def scope_json(self) -> dict[str, Any]:
        return {
            "accounts": dict(self.scope),
            "skipped": list(self.skipped),
            "unreadable": [item.describe() for item in self.unreadable[:20]],
        }


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


def _reference(
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
    return Reference(
        source=source,
        account_id=account.account_id,
        region=region,
        where=where,
        image=image,
        repository=ref.repo_key,
        tag=None if (digest or ref.digest) else ref.tag,
        digest=digest or ref.digest,
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
                _reference(
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
                refs.append(_reference(SOURCE_SERVICES, account, region, where, image))
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
                _reference(SOURCE_TASKS, account, region, where, image, digest=digest or None)
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
        refs.append(_reference(SOURCE_LAMBDA, account, region, where, image.image_uri))
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
                _reference(SOURCE_LAMBDA, account, region, where, image.image_uri, digest=digest)
            )
    return refs


def _batch_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    return [
        _reference(SOURCE_BATCH, account, region, f"Batch job definition {where}", image)
        for where, image in aws.list_batch_images(account, region)
    ]


def _apprunner_source(
    account: AwsAccount, region: str, now: datetime, clusters: Clusters
) -> list[Found]:
    return [
        _reference(SOURCE_APPRUNNER, account, region, f"App Runner service {where}", image)
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
SOURCE_NAMES = {
    SOURCE_REGIONS: "Enabled regions",
    SOURCE_TASK_DEFINITIONS: "ECS task definitions (ACTIVE)",
    SOURCE_SERVICES: "ECS services (every deployment)",
    SOURCE_TASKS: "Running ECS tasks",
    SOURCE_LAMBDA: "Lambda functions (every version)",
    SOURCE_BATCH: "AWS Batch job definitions (ACTIVE)",
    SOURCE_APPRUNNER: "App Runner services",
    SOURCE_CONFIG: "AWS Config aggregator",
}
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


def _config_source(
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
                refs.append(_reference(SOURCE_CONFIG, account, region, where, image))
    return refs


def take_snapshot(
    now: datetime,
    *,
    accounts: list[AwsAccount] | None = None,
    config_uris: dict[str, list[str]] | None = None,
    fresh_regions: bool = False,
) -> Snapshot:
    """Ask every source in every enabled account and region. ``config_uris`` maps a registry
    account id to the image URIs to ask its Config aggregator about (when it has one).
    ``fresh_regions``: discover the enabled regions now rather than from the day's cache (the
    deletion's snapshot: a region enabled since may already run the image)."""
    snapshot = Snapshot(taken_at=now, skipped=sorted(settings.CLEANUP_SKIP_SOURCES))
    accounts = accounts if accounts is not None else list(AwsAccount.objects.enabled())
    for account in accounts:
        try:
            regions = account_actions.usage_regions(account, now, fresh=fresh_regions)
        except Exception as exc:  # regions unknown: every source is unknown (fail closed)
            snapshot.answers.append(
                SourceAnswer(
                    SOURCE_REGIONS, account.account_id, "*", ok=False, error=_error_text(exc)
                )
            )
            continue
        snapshot.scope[account.account_id] = account.usage_scope
        for region in regions:
            clusters = _once(partial(aws.list_clusters, account, region))
            for name, service, source in ACCOUNT_SOURCES:
                if name in snapshot.skipped:
                    continue
                if not accounts_aws.offers(service, region):
                    snapshot.answers.append(
                        SourceAnswer(
                            name, account.account_id, region, note="not offered in this region"
                        )
                    )
                    continue
                _ask(
                    snapshot, name, account, region, partial(source, account, region, now, clusters)
                )
    if config_uris:
        configured = RegistrySettings.objects.select_related("account").exclude(
            config_aggregator_name=""
        )
        for registry in configured.filter(
            account__account_id__in=list(config_uris), account__enabled=True
        ):
            account = registry.account
            region = registry.config_aggregator_region or account.regions[0]
            uris = config_uris[account.account_id]
            _ask(
                snapshot,
                SOURCE_CONFIG,
                account,
                region,
                partial(_config_source, account, region, registry.config_aggregator_name, uris),
            )
    return snapshot


def _once(call: Callable[[], T]) -> Callable[[], T]:
    """``call``'s answer, asked at most once (the services and the tasks sources share the list of
    clusters); a failure is raised again to every caller."""
    answers: list[T] = []
    failures: list[Exception] = []

    def cached() -> T:
        if not answers and not failures:
            try:
                answers.append(call())
            except Exception as exc:  # re-raised below, for each source that needs it
                failures.append(exc)
        if failures:
            raise failures[0]
        return answers[0]

    return cached


def _error_text(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _ask(
    snapshot: Snapshot,
    name: str,
    account: AwsAccount,
    region: str,
    call: Callable[[], list[Found]],
) -> None:
    answer = SourceAnswer(source=name, account_id=account.account_id, region=region)
    try:
        found = [ref for ref in call() if ref is not None]
    except Exception as exc:  # any failure at all makes the snapshot incomplete: fail closed
        answer.ok = False
        answer.error = _error_text(exc)
    else:
        for item in found:
            if isinstance(item, Unreadable):
                snapshot.unreadable.append(item)
            else:
                answer.references += 1
                snapshot.add(item)
    snapshot.answers.append(answer)


# Repository state and verdicts -------------------------------------------------------------------


@dataclass
class RepositoryState:
    """A repository as ECR describes it now: opt-in tag, images, tags, index children."""

    opted_in: bool
    exists: bool
    images: dict[str, aws.ImageInfo] = field(default_factory=dict)
    tag_to_digest: dict[str, str] = field(default_factory=dict)
    parents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _newest: dict[int, set[str]] = field(default_factory=dict)
    _digest_tags: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, opted_in: bool, images: list[aws.ImageInfo] | None) -> RepositoryState:
        state = cls(opted_in=opted_in, exists=images is not None)
        for image in images or []:
            state.images[image.digest] = image
            for tag in image.tags:
                state.tag_to_digest[tag] = image.digest
                state._digest_tags[image.digest].append(tag)
            for child in image.child_digests:
                state.parents[child].add(image.digest)
        return state

    def tags_of(self, digests: set[str]) -> set[str]:
        return {tag for digest in digests for tag in self._digest_tags.get(digest, ())}

    def newest(self, count: int) -> set[str]:
        """Digests of the newest ``count`` top-level images (index children follow their index)."""
        if count <= 0:
            return set()
        if count not in self._newest:
            top = [image for digest, image in self.images.items() if not self.parents.get(digest)]
            top.sort(key=lambda image: (image.pushed_at is not None, image.pushed_at), reverse=True)
            self._newest[count] = {image.digest for image in top[:count]}
        return self._newest[count]


def references_to_image(
    snapshot: Snapshot, key: tuple[str, str, str], state: RepositoryState, digest: str
) -> list[Reference]:
    """References to the digest, to any tag that points at it now, and for an image index to any
    of its children (an index is in use when it or any child is referenced)."""
    digests = {digest}
    image = state.images.get(digest)
    if image is not None:
        digests.update(image.child_digests)
    return snapshot.references_to(key, digests, state.tags_of(digests))
