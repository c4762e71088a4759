"""What every family of cleanup actions shares: the worker's name, the opt-in tag, and the audit
targets of a repository, an image and a check."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import QuerySet

import audit
from cleanup import aws
from cleanup.models import DeletionCheck, Image, Repository

WORKER = "worker"
Status = DeletionCheck.Status
T = TypeVar("T")


def opt_in_tag() -> tuple[str, str]:
    key, value = settings.CLEANUP_OPT_IN_TAG
    return key, value


def is_opted_in(tags: dict[str, str] | None) -> bool:
    key, value = opt_in_tag()
    if not tags:
        return False
    return tags.get(key) == value


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def repository_target(repository: Repository) -> dict[str, Any]:
    return {
        "target_type": "ecr_repository",
        "target_id": repository.arn,
        "target_label": repository.name,
        "account_id": repository.account.account_id,
    }


def image_target(image: Image) -> dict[str, Any]:
    return {
        "target_type": "ecr_image",
        "target_id": image.digest,
        "target_label": image.label,
        "account_id": image.repository.account.account_id,
    }


def check_target(check: DeletionCheck) -> dict[str, Any]:
    return {
        "target_type": "deletion_check",
        "target_id": check.pk,
        "target_label": check.image.label,
        "account_id": check.image.repository.account.account_id,
    }


def finish_check(
    check: DeletionCheck, status: str, *, now: datetime, actor: str, reason: str
) -> None:
    """Close a check for good (cancelled, rejected, kept) and audit it as ``check.<status>``."""
    check.save(update_fields=check.finish(status, now=now, actor=actor, reason=reason))
    audit.record(
        actor,
        f"check.{status}",
        details={"reason": reason, "digest": check.image.digest},
        at=now,
        **check_target(check),
    )


def cancel_open_checks(
    checks: QuerySet[DeletionCheck], *, now: datetime, actor: str, reason: str
) -> None:
    """Cancel the checks of ``checks`` (a queryset) that are open and that no worker holds."""
    for check in checks.filter(status__in=DeletionCheck.CANCELLABLE).select_related(
        "image__repository__account"
    ):
        finish_check(check, Status.CANCELLED, now=now, actor=actor, reason=reason)


def image_info(image: Image) -> aws.ImageInfo:
    """An image row as the decision rules read ECR's answer about it."""
    return aws.ImageInfo(
        image.digest,
        image.tags,
        image.pushed_at,
        image.size_bytes,
        image.media_type,
        image.child_digests,
        image.last_pulled_at,
        status=image.storage_status,
    )
