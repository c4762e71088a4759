"""Where images are used: a snapshot of every usage source in every enabled account and region,
and the rules that say whether one digest of one repository is referenced.

Fail closed: a source that cannot answer is recorded as an error and the snapshot is incomplete;
callers never read "no reference" from an incomplete snapshot as "unused".
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from accounts.models import AwsAccount
from cleanup import aws
from cleanup.models import RegistrySettings, TaskDefinitionImages

ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@\s]+)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
CONFIG_EXPRESSION_LIMIT = 4096

SOURCE_TASK_DEFINITIONS = "ecs_task_definitions"
SOURCE_SERVICES = "ecs_services"
SOURCE_TASKS = "ecs_running_tasks"
SOURCE_LAMBDA = "lambda_functions"
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
    """Parse an ECR image URI; None for other registries or malformed values."""
    match = ECR_IMAGE.match((uri or "").strip())
    if not match:
        return None
    tag, digest = match.group("tag"), match.group("digest")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(
        match.group("account"), match.group("region"), match.group("repository"), tag, digest
    )


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

    def as_dict(self) -> dict:
        data = asdict(self)
        data["repository"] = "/".join(self.repository)
        return data


@dataclass
class SourceAnswer:
    source: str
    account_id: str
    region: str
    ok: bool = True
    error: str = ""
    references: int = 0


@dataclass
class Snapshot:
    taken_at: datetime
    answers: list[SourceAnswer] = field(default_factory=list)
    by_repository: dict[tuple[str, str, str], list[Reference]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @property
    def complete(self) -> bool:
        return all(answer.ok for answer in self.answers)

    @property
    def errors(self) -> list[str]:
        return [
            f"{a.source} {a.account_id}/{a.region}: {a.error}" for a in self.answers if not a.ok
        ]

    _by_digest: dict[tuple, list[Reference]] = field(default_factory=lambda: defaultdict(list))
    _by_tag: dict[tuple, list[Reference]] = field(default_factory=lambda: defaultdict(list))

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

    def sources_json(self) -> list[dict]:
        return [asdict(answer) for answer in self.answers]


# Caches ------------------------------------------------------------------------------------------

_lock = threading.Lock()
_task_definition_images: dict[str, list[str]] = {}
_function_images: dict[tuple[str, str, str], aws.FunctionImage | None] = {}


def clear_caches(*, database: bool = False) -> None:
    with _lock:
        _task_definition_images.clear()
        _function_images.clear()
    if database:
        TaskDefinitionImages.objects.all().delete()


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


def _function_image(
    account: AwsAccount, region: str, function: aws.FunctionSummary
) -> aws.FunctionImage | None:
    key = (function.arn, function.code_sha256, function.last_modified)
    with _lock:
        if key in _function_images:
            return _function_images[key]
    image = aws.function_image(account, region, function.name)
    with _lock:
        _function_images[key] = image
    return image


# Sources -----------------------------------------------------------------------------------------


def _family_revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _reference(
    source, account, region, where, image, *, digest: str | None = None
) -> Reference | None:
    ref = parse_image(image)
    if ref is None:
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


def _task_definitions_source(account, region, now, clusters) -> list[Reference]:
    arns = aws.list_active_task_definitions(account, region)
    images = task_definition_images(account, region, arns, now)
    refs = []
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


def _services_source(account, region, now, clusters) -> list[Reference]:
    services = aws.list_services(account, region, clusters())
    arns = {arn for service in services for arn in service.task_definitions}
    images = task_definition_images(account, region, arns, now)
    refs = []
    for service in services:
        for arn in service.task_definitions:
            where = f"service {service.cluster}/{service.name} ({_family_revision(arn)})"
            for image in images.get(arn, []):
                refs.append(_reference(SOURCE_SERVICES, account, region, where, image))
    return refs


def _tasks_source(account, region, now, clusters) -> list[Reference]:
    refs = []
    for task in aws.list_running_tasks(account, region, clusters()):
        where = f"task {task.cluster}/{task.task_arn.rsplit('/', 1)[-1]} ({_family_revision(task.task_definition_arn)})"
        for image, digest in task.containers:
            # ECS pinned the digest when the task started: a tag that moved since must not count.
            refs.append(
                _reference(SOURCE_TASKS, account, region, where, image, digest=digest or None)
            )
    return refs


def _lambda_source(account, region, now, clusters) -> list[Reference]:
    refs = []
    for function in aws.list_image_functions(account, region):
        image = _function_image(account, region, function)
        if image is None:
            continue
        where = f"Lambda function {function.name}"
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


ACCOUNT_SOURCES = [
    (SOURCE_TASK_DEFINITIONS, _task_definitions_source),
    (SOURCE_SERVICES, _services_source),
    (SOURCE_TASKS, _tasks_source),
    (SOURCE_LAMBDA, _lambda_source),
]


def config_expressions(uris: list[str]) -> list[str]:
    """Advanced queries for ACTIVE task definitions using any of ``uris``, each at most 4,096
    characters."""
    head = (
        "SELECT accountId, awsRegion, configuration.TaskDefinitionArn, configuration.ContainerDefinitions "
        "WHERE resourceType = 'AWS::ECS::TaskDefinition' AND configuration.Status = 'ACTIVE' "
        "AND configuration.ContainerDefinitions.Image IN ("
    )
    expressions, chunk = [], []
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
) -> list[Reference]:
    refs = []
    for expression in config_expressions(uris):
        for row in aws.select_aggregate(account, region, aggregator, expression):
            configuration = row.get("configuration", {})
            arn = configuration.get("TaskDefinitionArn", "")
            where = f"Config: task definition {_family_revision(arn)} in {row.get('accountId', '?')}/{row.get('awsRegion', '?')}"
            for container in configuration.get("ContainerDefinitions", []) or []:
                image = container.get("Image") or container.get("image") or ""
                ref = _reference(SOURCE_CONFIG, account, region, where, image)
                if ref:
                    refs.append(ref)
    return refs


def take_snapshot(
    now: datetime,
    *,
    accounts: list[AwsAccount] | None = None,
    config_uris: dict[str, list[str]] | None = None,
) -> Snapshot:
    """Ask every source in every enabled account and region. ``config_uris`` maps a registry
    account id to the image URIs to ask its Config aggregator about (when it has one)."""
    snapshot = Snapshot(taken_at=now)
    accounts = accounts if accounts is not None else list(AwsAccount.objects.enabled())
    for account in accounts:
        for region in account.regions:
            clusters = _once(lambda a=account, r=region: aws.list_clusters(a, r))
            for name, source in ACCOUNT_SOURCES:
                _ask(
                    snapshot,
                    name,
                    account,
                    region,
                    lambda s=source, a=account, r=region, c=clusters: s(a, r, now, c),
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
                lambda a=account, r=region, n=registry.config_aggregator_name, u=uris: (
                    _config_source(a, r, n, u)
                ),
            )
    return snapshot


def _once(call):
    """``call``'s answer, asked at most once (the services and the tasks sources share the list of
    clusters); a failure is raised again to every caller."""
    answer: list = []

    def cached():
        if not answer:
            try:
                answer.append((True, call()))
            except Exception as exc:  # re-raised below, for each source that needs it
                answer.append((False, exc))
        ok, value = answer[0]
        if not ok:
            raise value
        return value

    return cached


def _ask(snapshot: Snapshot, name: str, account: AwsAccount, region: str, call) -> None:
    answer = SourceAnswer(source=name, account_id=account.account_id, region=region)
    try:
        references = [ref for ref in call() if ref is not None]
    except Exception as exc:  # any failure at all makes the snapshot incomplete: fail closed
        answer.ok = False
        answer.error = str(exc) or type(exc).__name__
    else:
        answer.references = len(references)
        for ref in references:
            snapshot.add(ref)
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
