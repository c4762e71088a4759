"""The inventory: repositories (opt-in tag, mutability, replication) and images, read from every
registry account and region. Images that vanish from ECR are marked deleted, never forgotten."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

import audit
from accounts.models import AwsAccount
from cleanup import aws, usage
from cleanup.actions.common import (
    WORKER,
    cancel_open_checks,
    chunks,
    is_opted_in,
    opt_in_tag,
    repository_target,
)
from cleanup.models import DeletionCheck, Image, Repository
from console import clock

IMAGE_SYNC_FIELDS = (
    "tags",
    "pushed_at",
    "size_bytes",
    "media_type",
    "child_digests",
    "last_pulled_at",
    "deleted_at",
    # ECR's archival storage class (cleanup.actions.archive): imageStatus and its times.
    "storage_status",
    "archived_at",
    "activated_at",
)


@dataclass
class SyncResult:
    repositories: int = 0
    images: int = 0
    vanished: int = 0
    errors: list[str] = field(default_factory=list)


def do_sync_inventory(*, actor: str = WORKER, now: datetime | None = None) -> SyncResult:
    """Read repositories and images from every registry account and region."""
    now = now or clock.now()
    result = SyncResult()
    for account in AwsAccount.objects.registries():
        for region in account.regions:
            try:
                found = aws.list_repositories(account, region)
                try:
                    replication = aws.replication_destinations(account, region)
                except aws.CleanupAwsError:
                    replication = []
            except aws.CleanupAwsError as exc:
                result.errors.append(str(exc))
                continue
            seen = set()
            for info in found:
                repository = _upsert_repository(account, region, info, replication, actor, now)
                seen.add(repository.pk)
                result.repositories += 1
                try:
                    images = aws.describe_images(account, region, info.name)
                except aws.CleanupAwsError as exc:
                    result.errors.append(str(exc))
                    continue
                synced, vanished = sync_images(repository, images or [], now)
                result.images += synced
                result.vanished += vanished
            gone = Repository.objects.filter(
                account=account, region=region, deleted_at__isnull=True
            ).exclude(pk__in=seen)
            gone.update(deleted_at=now, opted_in=False)
    return result


def _upsert_repository(
    account: AwsAccount,
    region: str,
    info: aws.RepositoryInfo,
    replication: list[dict[str, Any]],
    actor: str,
    now: datetime,
) -> Repository:
    opted_in = is_opted_in(info.tags)
    with transaction.atomic():
        repository, created = Repository.objects.get_or_create(
            account=account,
            region=region,
            name=info.name,
            defaults={
                "arn": info.arn,
                "uri": info.uri,
                "opted_in": opted_in,
                "last_synced_at": now,
            },
        )
        changed = not created and repository.opted_in != opted_in
        repository.arn, repository.uri = info.arn, info.uri
        repository.tag_mutability = info.tag_mutability
        repository.replication = replication
        repository.opted_in = opted_in
        repository.last_synced_at = now
        repository.deleted_at = None
        repository.save(
            update_fields=[
                "arn",
                "uri",
                "tag_mutability",
                "replication",
                "opted_in",
                "last_synced_at",
                "deleted_at",
            ]
        )
        if changed or (created and opted_in):
            audit.record(
                actor,
                "repository.opted_in" if opted_in else "repository.opted_out",
                details={"source": "ECR tag read by sync", "tag": "=".join(opt_in_tag())},
                at=now,
                **repository_target(repository),
            )
    return repository


def sync_images(
    repository: Repository, images: list[aws.ImageInfo], now: datetime
) -> tuple[int, int]:
    """Make the ``Image`` rows of the repository match ECR's answer; returns (synced, vanished)."""
    # The synced fields only: not ``usage``, which holds up to 20 references an image.
    rows = Image.objects.filter(repository=repository).only("digest", *IMAGE_SYNC_FIELDS)
    existing = {image.digest: image for image in rows}
    create, update = [], []
    for info in images:
        row = existing.get(info.digest)
        values = {
            "tags": info.tags,
            "pushed_at": info.pushed_at,
            "size_bytes": info.size_bytes,
            "media_type": info.media_type,
            # An archived index cannot be read (BatchGetImage): its children stay as known.
            "child_digests": info.child_digests
            or (row.child_digests if row and info.status != "ACTIVE" else []),
            "last_pulled_at": info.last_pulled_at,
            "deleted_at": None,
            "storage_status": info.status,
            "archived_at": info.archived_at or (row.archived_at if row else None),
            "activated_at": info.activated_at or (row.activated_at if row else None),
        }
        if row is None:
            create.append(
                Image(repository=repository, digest=info.digest, first_seen_at=now, **values)
            )
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            update.append(row)
    with transaction.atomic():
        Image.objects.bulk_create(create, batch_size=500)
        Image.objects.bulk_update(update, list(IMAGE_SYNC_FIELDS), batch_size=500)
        present = {info.digest for info in images}
        vanished = [
            image.pk
            for digest, image in existing.items()
            if digest not in present and image.deleted_at is None
        ]
        for chunk in chunks(vanished, 500):
            Image.objects.filter(pk__in=chunk).update(deleted_at=now)
            cancel_open_checks(
                DeletionCheck.objects.filter(image_id__in=chunk),
                now=now,
                actor=WORKER,
                reason="the image vanished from ECR",
            )
    return len(images), len(vanished)


def read_repository_state(repository: Repository) -> usage.RepositoryState:
    """The repository as ECR says now: the opt-in tag read again, and a fresh list of images."""
    account, region = repository.account, repository.region
    tags = aws.repository_tags(account, region, repository.arn)
    if tags is None:
        return usage.RepositoryState(opted_in=False, exists=False)
    images = aws.describe_images(account, region, repository.name)
    return usage.RepositoryState.build(is_opted_in(tags), images)


def read_repository_states(
    repositories: list[Repository],
) -> tuple[dict[int, usage.RepositoryState], dict[int, str]]:
    """``read_repository_state`` for each; a repository ECR could not read is in the errors."""
    states, errors = {}, {}
    for repository in repositories:
        try:
            states[repository.pk] = read_repository_state(repository)
        except aws.CleanupAwsError as exc:
            errors[repository.pk] = str(exc)
    return states, errors


class RepositoryStates:
    """Repositories as ECR says now, for a run that goes through them in order: each is read once,
    when its checks come up, and forgotten once they are decided, so a batch over thousands of
    repositories never holds all their images at once."""

    def __init__(self) -> None:
        self.states: dict[int, usage.RepositoryState] = {}
        self.errors: dict[int, str] = {}

    def read(self, repositories: Iterable[Repository]) -> list[str]:
        """Read the repositories not read yet; returns the errors of these reads."""
        errors = []
        for repository in repositories:
            if repository.pk in self.states or repository.pk in self.errors:
                continue
            try:
                self.states[repository.pk] = read_repository_state(repository)
            except aws.CleanupAwsError as exc:
                self.errors[repository.pk] = str(exc)
                errors.append(str(exc))
        return errors

    def forget(self, pks: Iterable[int]) -> None:
        for pk in pks:
            self.states.pop(pk, None)

    def get(self, pk: int) -> usage.RepositoryState | None:
        return self.states.get(pk)

    def error(self, pk: int) -> str:
        return self.errors.get(pk, "")
