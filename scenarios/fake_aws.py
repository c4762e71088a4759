"""An in-process fake of every AWS call ``cleanup.aws`` makes (and ``accounts.aws.enabled_regions``),
fast enough for the property tests (``tests/cleanup/test_properties.py``) and the scale benchmark
(``bench/cleanup_scale.py``); ``install(monkeypatch)`` puts it in place of the gateways. It counts calls by AWS operation the way
the real paginated calls would (one ``ListTaskDefinitions`` per 100 ARNs, one ``DescribeServices``
per 10 services, one ``ListFunctions`` per 50 function versions, ...).

It also knows the ground truth: ``referenced_digests``, ``registry_unreadable`` and
``recently_pulled`` read the fake world with the fake's own parser of image references, not the
console's, so a property test can judge every ``BatchDeleteImage`` independently."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from accounts import aws as accounts_aws
from cleanup import aws
from scenarios.ecr import MANIFEST

GATEWAY_FUNCTIONS = [
    "list_repositories",
    "repository_tags",
    "set_repository_tag",
    "remove_repository_tag",
    "replication_destinations",
    "describe_images",
    "batch_delete_images",
    "list_active_task_definitions",
    "describe_task_definition",
    "list_clusters",
    "list_services",
    "list_running_tasks",
    "list_image_functions",
    "function_image",
    "list_batch_images",
    "list_apprunner_images",
    "select_aggregate",
]
ACCOUNT_FUNCTIONS = ["enabled_regions"]  # of accounts.aws, which accounts.actions calls through

# Every host form of a private ECR registry, as (what follows the account id, the domain):
# standard, FIPS, dual-stack, dual-stack FIPS, China, China dual-stack, European Sovereign Cloud.
HOST_FORMS = [
    ("dkr.ecr", "amazonaws.com"),
    ("dkr.ecr-fips", "amazonaws.com"),
    ("dkr-ecr", "on.aws"),
    ("dkr-ecr-fips", "on.aws"),
    ("dkr.ecr", "amazonaws.com.cn"),
    ("dkr-ecr", "on.amazonwebservices.com.cn"),
    ("dkr.ecr", "amazonaws.eu"),
]
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+", re.ASCII)
_NAME_COMPONENT = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*", re.ASCII)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,299}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])", re.ASCII)
_EPOCH = datetime(2026, 1, 1)


@dataclass(frozen=True)
class Parsed:
    """An image reference as the fake reads it (no tag and no digest means ``latest``)."""

    account_id: str
    region: str
    repository: str
    tag: str | None
    digest: str | None


def read_reference(image: str) -> Parsed | None:
    """The fake's own reading of an ECR image reference, written apart from the console's parser:
    None for anything that is not a valid reference to a private ECR registry."""
    host, slash, path = image.partition("/")
    host = host.lower()  # host names are case-insensitive; repository names are not
    account_id, dot, rest = host.partition(".")
    if not (slash and dot and len(account_id) == 12 and account_id.isdigit()):
        return None
    for infix, domain in HOST_FORMS:
        if rest.startswith(infix + ".") and rest.endswith("." + domain):
            region = rest[len(infix) + 1 : -len(domain) - 1]
            if _REGION.fullmatch(region):
                break
    else:
        return None
    name_and_tag, at, digest = path.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return None
    name, colon, tag = name_and_tag.partition(":")
    if colon and not _TAG.fullmatch(tag):
        return None
    if not 2 <= len(name) <= 256 or not all(
        _NAME_COMPONENT.fullmatch(part) for part in name.split("/")
    ):
        return None
    return Parsed(
        account_id, region, name, (tag or "latest") if not digest else None, digest or None
    )


@dataclass
class FakeImage:
    digest: str
    tags: list[str]
    pushed_at: datetime
    size: int = 1000
    media_type: str = MANIFEST
    children: list[str] = field(default_factory=list)
    last_pulled_at: datetime | None = None  # ECR's lastRecordedPullTime


@dataclass
class FakeRepository:
    account_id: str
    region: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    images: dict[str, FakeImage] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{self.name}"

    @property
    def uri(self) -> str:
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{self.name}"

    def uris(self) -> dict[str, str]:
        """The repository's URI in each host form a workload may write (all name this repo)."""
        a, r, n = self.account_id, self.region, self.name
        return {
            "standard": self.uri,
            "fips": f"{a}.dkr.ecr-fips.{r}.amazonaws.com/{n}",
            "dualstack": f"{a}.dkr-ecr.{r}.on.aws/{n}",
            "dualstack_fips": f"{a}.dkr-ecr-fips.{r}.on.aws/{n}",
        }

    def tag_to_digest(self) -> dict[str, str]:
        return {tag: image.digest for image in self.images.values() for tag in image.tags}

    def resolve(self, reference: Parsed) -> str | None:
        """The digest a reference to this repository points at now (None: nothing)."""
        if reference.digest:
            return reference.digest if reference.digest in self.images else None
        return self.tag_to_digest().get(reference.tag or "latest")


@dataclass
class FakeVersion:
    """One version of an image function: ``$LATEST`` or a published number. ``digest`` is the
    digest ``image_uri`` resolved to when the code was deployed (Lambda pins it then)."""

    version: str
    image_uri: str
    digest: str
    last_modified: str

    @property
    def code_sha256(self) -> str:
        return self.digest.removeprefix("sha256:")


@dataclass
class FakeFunction:
    name: str
    latest: FakeVersion
    published: list[FakeVersion] = field(default_factory=list)

    @property
    def versions(self) -> list[FakeVersion]:
        return [self.latest, *self.published]


@dataclass
class FakeJobDefinition:
    name: str
    revision: int
    images: list[str]
    status: str = "ACTIVE"


@dataclass
class FakeAppRunnerService:
    name: str
    image: str
    status: str = "RUNNING"  # DELETED ones still appear in ListServices for a while


@dataclass
class FakeRegion:
    task_definitions: dict[str, tuple[str, list[str]]] = field(
        default_factory=dict
    )  # arn -> status, images
    services: list[aws.ServiceInfo] = field(default_factory=list)
    tasks: list[aws.TaskInfo] = field(default_factory=list)
    functions: dict[str, FakeFunction] = field(default_factory=dict)
    job_definitions: list[FakeJobDefinition] = field(default_factory=list)
    apprunner_services: list[FakeAppRunnerService] = field(default_factory=list)


class FakeAws:
    def __init__(self) -> None:
        self.repositories: dict[tuple[str, str, str], FakeRepository] = {}
        self.regions: dict[tuple[str, str], FakeRegion] = {}
        self.enabled: dict[str, list[str]] = {}  # account id -> regions DescribeRegions answers
        self.calls: Counter[str] = Counter()
        self.denied: set[str] = set()  # account ids that answer AccessDenied to everything
        self.failing: set[str] = set()  # operations that answer ThrottlingException for now
        self.on_delete = None  # callback(repository, digests) run before a BatchDeleteImage
        self._clock = 0
        # Lambda never reuses a version number, even for a function deleted and created again.
        self._last_version: Counter[tuple[str, str, str]] = Counter()

    # Building the world --------------------------------------------------------------------------

    def region(self, account_id: str, region: str) -> FakeRegion:
        return self.regions.setdefault((account_id, region), FakeRegion())

    def repository(
        self, account_id: str, region: str, name: str, *, opted_in: bool = True
    ) -> FakeRepository:
        repo = FakeRepository(
            account_id, region, name, {"ecr-cleanup": "enabled"} if opted_in else {}
        )
        self.repositories[(account_id, region, name)] = repo
        return repo

    def enable_regions(self, account_id: str, regions: list[str]) -> None:
        """What ``DescribeRegions`` answers for the account (default: the regions the fake was
        used with for it, else the first region the account is registered with)."""
        self.enabled[account_id] = sorted(regions)

    def register(
        self, account_id: str, region: str, family: str, images: list[str], status: str = "ACTIVE"
    ) -> str:
        tds = self.region(account_id, region).task_definitions
        revision = 1 + sum(1 for arn in tds if f"/{family}:" in arn)
        arn = f"arn:aws:ecs:{region}:{account_id}:task-definition/{family}:{revision}"
        tds[arn] = (status, list(images))
        return arn

    def deregister(self, account_id: str, region: str, arn: str) -> list[str]:
        tds = self.region(account_id, region).task_definitions
        _, images = tds[arn]
        tds[arn] = ("INACTIVE", images)
        return images

    def resolve(self, image: str) -> str | None:
        """The digest an image reference points at now in the fake's registries, or None."""
        reference = read_reference(image)
        if reference is None:
            return None
        repo = self.repositories.get((reference.account_id, reference.region, reference.repository))
        return repo.resolve(reference) if repo else None

    def _tick(self) -> str:
        self._clock += 1
        return (_EPOCH + timedelta(seconds=self._clock)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def deploy_function(
        self, account_id: str, region: str, name: str, image_uri: str, digest: str | None = None
    ) -> FakeFunction | None:
        """CreateFunction, or UpdateFunctionCode of ``$LATEST`` when it exists (published
        versions keep their image). Lambda resolves ``image_uri`` to a digest now; None (nothing
        deployed) when it points at no image, as Lambda refuses it."""
        digest = digest or self.resolve(image_uri)
        if digest is None:
            return None
        functions = self.region(account_id, region).functions
        latest = FakeVersion("$LATEST", image_uri, digest, self._tick())
        if name in functions:
            functions[name].latest = latest
        else:
            functions[name] = FakeFunction(name, latest)
        return functions[name]

    def publish_version(self, account_id: str, region: str, name: str) -> str | None:
        """PublishVersion: a copy of ``$LATEST`` under the next number (or the last published
        version when ``$LATEST`` has not changed since, as Lambda answers)."""
        function = self.region(account_id, region).functions.get(name)
        if function is None:
            return None
        latest = function.latest
        if function.published and (
            function.published[-1].image_uri,
            function.published[-1].digest,
        ) == (
            latest.image_uri,
            latest.digest,
        ):
            return function.published[-1].version
        self._last_version[(account_id, region, name)] += 1
        number = str(self._last_version[(account_id, region, name)])
        function.published.append(
            FakeVersion(number, latest.image_uri, latest.digest, self._tick())
        )
        return number

    def delete_function(
        self, account_id: str, region: str, name: str, version: str | None = None
    ) -> None:
        """DeleteFunction: one published version with ``version``, else every version."""
        functions = self.region(account_id, region).functions
        if name not in functions:
            return
        if version is None:
            del functions[name]
        else:
            function = functions[name]
            function.published = [v for v in function.published if v.version != version]

    def register_job_definition(
        self, account_id: str, region: str, name: str, images: list[str]
    ) -> str:
        """RegisterJobDefinition: a new ACTIVE revision (earlier revisions stay ACTIVE)."""
        definitions = self.region(account_id, region).job_definitions
        revision = 1 + sum(1 for d in definitions if d.name == name)
        definitions.append(FakeJobDefinition(name, revision, list(images)))
        return f"{name}:{revision}"

    def deregister_job_definition(self, account_id: str, region: str, name_revision: str) -> None:
        for definition in self.region(account_id, region).job_definitions:
            if f"{definition.name}:{definition.revision}" == name_revision:
                definition.status = "INACTIVE"

    def deploy_apprunner_service(self, account_id: str, region: str, name: str, image: str) -> None:
        """CreateService, or UpdateService to a new image when a live one has that name."""
        services = self.region(account_id, region).apprunner_services
        for service in services:
            if service.name == name and service.status != "DELETED":
                service.image = image
                return
        services.append(FakeAppRunnerService(name, image))

    def delete_apprunner_service(self, account_id: str, region: str, name: str) -> None:
        for service in self.region(account_id, region).apprunner_services:
            if service.name == name:
                service.status = "DELETED"

    # Ground truth for property tests --------------------------------------------------------------

    def workload_images(self) -> Iterator[tuple[str, str | None]]:
        """(image string, digest pinned by the platform or None) of everything that runs or can
        start now, in every account and region of the fake."""
        for region in self.regions.values():
            for status, images in region.task_definitions.values():
                if status == "ACTIVE":
                    for image in images:
                        yield image, None
            for service in region.services:  # every deployment, ACTIVE revision or not
                for arn in service.task_definitions:
                    for image in region.task_definitions.get(arn, ("", []))[1]:
                        yield image, None
            for task in region.tasks:  # ECS pinned the digest when the task started
                for image, digest in task.containers:
                    yield image, digest or None
            for function in region.functions.values():  # every version keeps its digest
                for version in function.versions:
                    yield version.image_uri, None
                    yield version.image_uri, version.digest
            for definition in region.job_definitions:
                if definition.status == "ACTIVE":
                    for image in definition.images:
                        yield image, None
            for service in region.apprunner_services:
                if service.status != "DELETED":
                    yield service.image, None

    def referenced_digests(self, repo: FakeRepository) -> set[str]:
        """Digests of ``repo`` some workload references right now, by the fake's own reading: by
        digest, by a tag that points at the digest now, in any host form, in any region."""
        tags = repo.tag_to_digest()
        direct: set[str] = set()
        for image, pinned in self.workload_images():
            reference = read_reference(image)
            if reference is None or (
                reference.account_id,
                reference.region,
                reference.repository,
            ) != (repo.account_id, repo.region, repo.name):
                continue
            if pinned or reference.digest:
                direct.add(pinned or reference.digest)
            elif reference.tag in tags:
                direct.add(tags[reference.tag])
        used = set(direct)
        for image in repo.images.values():  # an index is used when a child is; it keeps them
            if image.children and (image.digest in direct or direct & set(image.children)):
                used.add(image.digest)
                used.update(image.children)
        return used

    def registry_unreadable(self, repo: FakeRepository) -> bool:
        """True when a workload names the registry account of ``repo`` in the host of an image
        string that is not a valid ECR reference: nothing of that registry may be judged unused."""
        for image, _ in self.workload_images():
            host = image.partition("/")[0]
            if repo.account_id in _ACCOUNT_ID.findall(host) and read_reference(image) is None:
                return True
        return False

    def recently_pulled(self, repo: FakeRepository, now: datetime, window: timedelta) -> set[str]:
        """Digests of ``repo`` that ECR recorded a pull of within ``window`` before ``now``."""
        return {
            image.digest
            for image in repo.images.values()
            if image.last_pulled_at is not None and image.last_pulled_at > now - window
        }

    # Gateway --------------------------------------------------------------------------------------

    def install(self, monkeypatch) -> FakeAws:
        for name in GATEWAY_FUNCTIONS:
            monkeypatch.setattr(aws, name, getattr(self, name))
        for name in ACCOUNT_FUNCTIONS:
            monkeypatch.setattr(accounts_aws, name, getattr(self, name))
        return self

    def _count(
        self,
        account,
        operation: str,
        times: int = 1,
        error: type[accounts_aws.AwsError] = aws.CleanupAwsError,
    ) -> None:
        self.calls[operation] += times
        if account.account_id in self.denied:
            raise error(
                f"AccessDenied: not authorized to perform {operation}",
                code="AccessDenied",
                account_id=account.account_id,
            )
        if times and operation in self.failing:
            raise error(
                f"ThrottlingException: {operation} rate exceeded",
                code="ThrottlingException",
                retryable=True,
                account_id=account.account_id,
            )

    def enabled_regions(self, account) -> list[str]:
        self._count(account, "DescribeRegions", error=accounts_aws.AwsError)
        if account.account_id in self.enabled:
            return list(self.enabled[account.account_id])
        used = {g for (a, g) in self.regions if a == account.account_id}
        used |= {g for (a, g, _) in self.repositories if a == account.account_id}
        return sorted(used or set(account.regions[:1]))

    def _repos(self, account, region):
        return [
            r
            for (a, g, _), r in self.repositories.items()
            if a == account.account_id and g == region
        ]

    def list_repositories(self, account, region):
        repos = self._repos(account, region)
        self._count(account, "DescribeRepositories", max(1, math.ceil(len(repos) / 1000)))
        self._count(account, "ListTagsForResource", len(repos))
        return [aws.RepositoryInfo(r.name, r.arn, r.uri, "MUTABLE", dict(r.tags)) for r in repos]

    def _repo_by_arn(self, account, region, arn):
        return next((r for r in self._repos(account, region) if r.arn == arn), None)

    def repository_tags(self, account, region, arn):
        self._count(account, "ListTagsForResource")
        repo = self._repo_by_arn(account, region, arn)
        return None if repo is None else dict(repo.tags)

    def set_repository_tag(self, account, region, arn, key, value):
        self._count(account, "TagResource")
        self._repo_by_arn(account, region, arn).tags[key] = value

    def remove_repository_tag(self, account, region, arn, key):
        self._count(account, "UntagResource")
        self._repo_by_arn(account, region, arn).tags.pop(key, None)

    def replication_destinations(self, account, region):
        self._count(account, "DescribeRegistry")
        return []

    def describe_images(self, account, region, repository):
        repo = self.repositories.get((account.account_id, region, repository))
        self._count(
            account, "DescribeImages", max(1, math.ceil(len(repo.images) / 1000)) if repo else 1
        )
        if repo is None:
            return None
        indexes = sum(1 for image in repo.images.values() if image.children)
        if indexes:
            self._count(account, "BatchGetImage", math.ceil(indexes / 100))
        return [
            aws.ImageInfo(
                i.digest,
                sorted(i.tags),
                i.pushed_at,
                i.size,
                i.media_type,
                list(i.children),
                i.last_pulled_at,
            )
            for i in repo.images.values()
        ]

    def batch_delete_images(self, account, region, repository, digests):
        if len(digests) > aws.MAX_DELETE_BATCH:
            raise ValueError("more than 100 ids")
        self._count(account, "BatchDeleteImage")
        repo = self.repositories[(account.account_id, region, repository)]
        if self.on_delete:
            self.on_delete(repo, list(digests))
        deleted, failures = [], []
        for digest in digests:
            if digest in repo.images:
                del repo.images[digest]
                deleted.append(digest)
            else:
                failures.append((digest, "ImageNotFound", "Requested image not found"))
        return aws.DeleteOutcome(deleted, failures)

    def list_active_task_definitions(self, account, region):
        tds = self.region(account.account_id, region).task_definitions
        active = [arn for arn, (status, _) in tds.items() if status == "ACTIVE"]
        self._count(account, "ListTaskDefinitions", max(1, math.ceil(len(active) / 100)))
        return active

    def describe_task_definition(self, account, region, task_definition):
        self._count(account, "DescribeTaskDefinition")
        tds = self.region(account.account_id, region).task_definitions
        if task_definition in tds:
            return task_definition, list(tds[task_definition][1])
        return None

    def list_clusters(self, account, region):
        place = self.region(account.account_id, region)
        self._count(account, "ListClusters")
        return sorted({s.cluster for s in place.services} | {t.cluster for t in place.tasks}) or [
            "default"
        ]

    def list_services(self, account, region, clusters):
        services = self.region(account.account_id, region).services
        for cluster in clusters:
            count = sum(1 for s in services if s.cluster == cluster)
            self._count(account, "ListServices", max(1, math.ceil(count / 100)))
            self._count(account, "DescribeServices", math.ceil(count / 10))
        return list(services)

    def list_running_tasks(self, account, region, clusters):
        tasks = self.region(account.account_id, region).tasks
        for cluster in clusters:
            count = sum(1 for t in tasks if t.cluster == cluster)
            self._count(account, "ListTasks", max(1, math.ceil(count / 100)))
            self._count(account, "DescribeTasks", math.ceil(count / 100))
        return list(tasks)

    def list_image_functions(self, account, region):
        """ListFunctions with FunctionVersion=ALL: ``$LATEST`` (unqualified ARN) and every
        published version (qualified ARN) of every function, 50 a page."""
        functions = self.region(account.account_id, region).functions.values()
        found = []
        for function in functions:
            arn = f"arn:aws:lambda:{region}:{account.account_id}:function:{function.name}"
            for version in function.versions:
                found.append(
                    aws.FunctionSummary(
                        function.name,
                        arn if version.version == "$LATEST" else f"{arn}:{version.version}",
                        version.code_sha256,
                        version.last_modified,
                        version.version,
                    )
                )
        self._count(account, "ListFunctions", max(1, math.ceil(len(found) / 50)))
        return found

    def function_image(self, account, region, name, version="$LATEST"):
        """GetFunction with ``Qualifier=version``."""
        self._count(account, "GetFunction")
        function = self.region(account.account_id, region).functions.get(name)
        for candidate in function.versions if function else []:
            if candidate.version == version:
                registry = candidate.image_uri.partition("@")[0]
                host, slash, path = registry.partition("/")
                resolved = f"{host}{slash}{path.partition(':')[0]}@{candidate.digest}"
                return aws.FunctionImage(candidate.image_uri, resolved)
        return None

    def list_batch_images(self, account, region):
        """DescribeJobDefinitions with status=ACTIVE, 100 a page."""
        active = [
            d
            for d in self.region(account.account_id, region).job_definitions
            if d.status == "ACTIVE"
        ]
        self._count(account, "DescribeJobDefinitions", max(1, math.ceil(len(active) / 100)))
        return [(f"{d.name}:{d.revision}", image) for d in active for image in d.images]

    def list_apprunner_images(self, account, region):
        """App Runner's ListServices (20 a page), then one DescribeService per live service."""
        services = self.region(account.account_id, region).apprunner_services
        self._count(account, "apprunner:ListServices", max(1, math.ceil(len(services) / 20)))
        live = [s for s in services if s.status != "DELETED"]
        self._count(account, "apprunner:DescribeService", len(live))
        return [(s.name, s.image) for s in live]

    def select_aggregate(self, account, region, aggregator, expression):
        self._count(account, "SelectAggregateResourceConfig")
        return []
