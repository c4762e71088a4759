"""ECR's archival storage class: ``UpdateImageStorageClass`` moves one image (by digest) to
``ARCHIVE`` or back to ``STANDARD``; ``DescribeImages`` by digest tells how a restore is going
(``ACTIVATING`` until the image can be pulled again, then ``ACTIVE``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cleanup.aws.common import CleanupAwsError, _client, _errors, _is_not_found

if TYPE_CHECKING:
    from accounts.models import AwsAccount

ARCHIVE = "ARCHIVE"
STANDARD = "STANDARD"


def update_image_storage_class(
    account: AwsAccount, region: str, repository: str, digest: str, target: str
) -> str:
    """One ``UpdateImageStorageClass`` call by digest; returns the ``imageStatus`` ECR answers
    (``ARCHIVED`` after an archive, ``ACTIVATING`` or ``ACTIVE`` after a restore). Raises
    ``CleanupAwsError`` (codes such as ``ImageNotFoundException``,
    ``ImageStorageClassUpdateNotSupportedException``, ``InvalidParameterException``)."""
    if target not in (ARCHIVE, STANDARD):
        raise ValueError(f"target storage class {target!r}: expected {ARCHIVE} or {STANDARD}")
    with _errors(account):
        answer = _client(account, region, "ecr").update_image_storage_class(
            repositoryName=repository,
            imageId={"imageDigest": digest},
            targetStorageClass=target,
        )
    status: str = answer.get("imageStatus", "")
    return status


def image_status(account: AwsAccount, region: str, repository: str, digest: str) -> str | None:
    """The ``imageStatus`` of one image now (one ``DescribeImages`` call), or None when the
    image or its repository is gone."""
    try:
        with _errors(account):
            answer = _client(account, region, "ecr").describe_images(
                repositoryName=repository,
                imageIds=[{"imageDigest": digest}],
                filter={"imageStatus": "ANY"},
            )
    except CleanupAwsError as exc:
        if _is_not_found(exc):
            return None
        raise
    details = answer.get("imageDetails", [])
    status: str = details[0].get("imageStatus", "ACTIVE") if details else ""
    return status or None
