"""An in-process fake of every AWS call ``cleanup.aws`` makes, fast enough for property tests and
the scale benchmark. It counts calls by AWS operation the way the real paginated calls would
(one ``ListTaskDefinitions`` per 100 ARNs, one ``DescribeServices`` per 10 services, ...)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from cleanup import aws

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
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
    "select_aggregate",
]


@dataclass
class FakeImage:
    digest: str
    tags: list[str]
    pushed_at: datetime
    size: int = 1000
    media_type: str = MANIFEST
    children: list[str] = field(default_factory=list)


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

    def tag_to_digest(self) -> dict[str, str]:
        return {tag: image.digest for image in self.images.values() for tag in image.tags}


@dataclass
class FakeRegion:
    task_definitions: dict[str, tuple[str, list[str]]] = field(
        default_factory=dict
    )  # arn -> status, images
    services: list[aws.ServiceInfo] = field(default_factory=list)
    tasks: list[aws.TaskInfo] = field(default_factory=list)
    functions: list[tuple[aws.FunctionSummary, aws.FunctionImage]] = field(default_factory=list)


class FakeAws:
    def __init__(self) -> None:
        self.repositories: dict[tuple[str, str, str], FakeRepository] = {}
        self.regions: dict[tuple[str, str], FakeRegion] = {}
        self.calls: Counter[str] = Counter()
        self.denied: set[str] = set()  # account ids that answer AccessDenied to everything
        self.on_delete = None  # callback(repository, digests) run before a BatchDeleteImage

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

    # Ground truth for property tests --------------------------------------------------------------

    def referenced_digests(self, repo: FakeRepository) -> set[str]:
        """Digests of ``repo`` some workload references right now, by the fake's own reading."""
        tags = repo.tag_to_digest()
        direct: set[str] = set()

        def note(image: str, digest: str = "") -> None:
            prefix = repo.uri
            if not image.startswith(prefix) or image[len(prefix) : len(prefix) + 1] not in (
                ":",
                "@",
                "",
            ):
                return
            rest = image[len(prefix) :]
            if digest:
                direct.add(digest)
            elif rest.startswith("@"):
                direct.add(rest[1:])
            else:
                tag = rest[1:] if rest.startswith(":") else "latest"
                if tag in tags:
                    direct.add(tags[tag])

        for region in self.regions.values():
            for status, images in region.task_definitions.values():
                if status == "ACTIVE":
                    for image in images:
                        note(image)
            for service in region.services:
                for arn in service.task_definitions:
                    for image in region.task_definitions.get(arn, ("", []))[1]:
                        note(image)
            for task in region.tasks:
                for image, digest in task.containers:
                    note(image, digest)
            for _, function in region.functions:
                note(function.image_uri)
        used = set(direct)
        for (
            image
        ) in repo.images.values():  # an index is used when a child is, and keeps its children
            if image.children and (image.digest in direct or direct & set(image.children)):
                used.add(image.digest)
                used.update(image.children)
        return used

    # Gateway --------------------------------------------------------------------------------------

    def install(self, monkeypatch) -> FakeAws:
        for name in GATEWAY_FUNCTIONS:
            monkeypatch.setattr(aws, name, getattr(self, name))
        return self

    def _count(self, account, operation: str, times: int = 1) -> None:
        self.calls[operation] += times
        if account.account_id in self.denied:
            raise aws.CleanupAwsError(
                f"AccessDenied: not authorized to perform {operation}",
                code="AccessDenied",
                account_id=account.account_id,
            )

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
                i.digest, sorted(i.tags), i.pushed_at, i.size, i.media_type, list(i.children), None
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
        functions = self.region(account.account_id, region).functions
        self._count(account, "ListFunctions", max(1, math.ceil(len(functions) / 50)))
        return [summary for summary, _ in functions]

    def function_image(self, account, region, name):
        self._count(account, "GetFunction")
        for summary, image in self.region(account.account_id, region).functions:
            if summary.name == name:
                return image
        return None

    def select_aggregate(self, account, region, aggregator, expression):
        self._count(account, "SelectAggregateResourceConfig")
        return []
