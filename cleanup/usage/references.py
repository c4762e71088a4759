"""Image references as workloads write them: every host form of a private ECR registry parsed,
and what cannot be parsed but names a registry kept apart as "unreadable" (it fails closed)."""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass
from typing import Any

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
SOURCE_ORGANIZATION = "organization_members"


@dataclass(frozen=True, slots=True)
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


# One tuple per repository and one string per tag or digest, shared by every reference of every
# snapshot (a snapshot holds one reference per container image of every ACTIVE revision).
_repository_keys: dict[tuple[str, str, str], tuple[str, str, str]] = {}


def shared_key(key: tuple[str, str, str]) -> tuple[str, str, str]:
    """The one ``(registry, region, repository)`` tuple equal to ``key``."""
    found = _repository_keys.get(key)
    if found is None:
        registry, region, repository = key
        interned = (sys.intern(registry), sys.intern(region), sys.intern(repository))
        found = _repository_keys.setdefault(key, interned)
    return found


def shared_text(value: str | None) -> str | None:
    return sys.intern(value) if value else value


def unreadable_accounts(uri: str) -> set[str]:
    """The 12-digit account ids named in the host of an image string that ``parse_image`` could
    not read: if one is a registry's, that registry's images cannot be judged unused."""
    host = (uri or "").strip().partition("/")[0]
    return set(ACCOUNT_IN_HOST.findall(host))


@dataclass(frozen=True, slots=True)
class Reference:
    """One use of an image found by one source. A snapshot holds one per container image of every
    ACTIVE revision in every account: slots, and strings shared (``shared_key``, ``shared_text``)."""

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


SOURCE_NAMES = {
    SOURCE_REGIONS: "Enabled regions",
    SOURCE_TASK_DEFINITIONS: "ECS task definitions (ACTIVE)",
    SOURCE_SERVICES: "ECS services (every deployment)",
    SOURCE_TASKS: "Running ECS tasks",
    SOURCE_LAMBDA: "Lambda functions (every version)",
    SOURCE_BATCH: "AWS Batch job definitions (ACTIVE)",
    SOURCE_APPRUNNER: "App Runner services",
    SOURCE_CONFIG: "AWS Config aggregator",
    SOURCE_ORGANIZATION: "Accounts of the AWS Organization",
}
