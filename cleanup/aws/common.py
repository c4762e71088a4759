"""What the gateway's modules share: the error class, the answers as small dataclasses, and
clients on the account's session."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from accounts import aws as accounts_aws
from accounts.aws import AwsError

if TYPE_CHECKING:
    from accounts.models import AwsAccount


MAX_DELETE_BATCH = 100  # BatchDeleteImage takes at most 100 image ids a call


class CleanupAwsError(AwsError):
    """An ECR, ECS, Lambda or Config call that did not answer."""


@dataclass(frozen=True)
class RepositoryInfo:
    name: str
    arn: str
    uri: str
    tag_mutability: str
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class ImageInfo:
    digest: str
    tags: list[str]
    pushed_at: datetime | None
    size_bytes: int
    media_type: str
    child_digests: list[str] = field(default_factory=list)
    last_pulled_at: datetime | None = None
    status: str = "ACTIVE"  # ECR's imageStatus: ACTIVE, ARCHIVED or ACTIVATING
    archived_at: datetime | None = None  # lastArchivedAt
    activated_at: datetime | None = None  # lastActivatedAt


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
