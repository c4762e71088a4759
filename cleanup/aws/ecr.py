"""ECR in the registry accounts: repositories, their opt-in tag, images, deletion by digest."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accounts.models import AwsAccount

from cleanup.aws.common import (
    MAX_DELETE_BATCH,
    CleanupAwsError,
    DeleteOutcome,
    ImageInfo,
    RepositoryInfo,
    _client,
    _errors,
    _is_not_found,
)

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
            # Without the filter ECR lists ACTIVE images only: archived ones would look deleted.
            pages = ecr.get_paginator("describe_images").paginate(
                repositoryName=repository, filter={"imageStatus": "ANY"}
            )
            for page in pages:
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
            status=d.get("imageStatus", "ACTIVE"),
            archived_at=d.get("lastArchivedAt"),
            activated_at=d.get("lastActivatedAt"),
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
