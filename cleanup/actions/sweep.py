"""The sweep: images no event ever names (pushed but never deployed, or deregistered before the
console existed) get a check too, so a repository reaches a clean state by itself.

It reads and writes one repository at a time (an inventory may hold millions of images): what it
keeps for the whole run is the usage snapshot, the ids of the images it scheduled, and counts."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

import audit
from cleanup import rules, usage
from cleanup.actions.common import WORKER, Status, chunks, image_info
from cleanup.actions.decide import mark_used
from cleanup.models import DeletionCheck, Image, Repository
from console import clock

# What the sweep reads of an image (not ``usage``, the JSON of where it was last used).
SWEEP_FIELDS = (
    "repository_id",
    "digest",
    "tags",
    "pushed_at",
    "size_bytes",
    "media_type",
    "child_digests",
    "last_pulled_at",
    "protected",
    "storage_status",
)
# Written when this many checks (or images in use) are pending, so the one SQLite writer is free
# between batches and memory stays bounded whatever the size of the inventory.
WRITE_BATCH = 2000


class ScheduledImages:
    """The images a sweep scheduled, as ids; iterating loads the rows, a page at a time."""

    def __init__(self) -> None:
        self.ids = array("q")

    def append(self, image_id: int) -> None:
        self.ids.append(image_id)

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Image]:
        for chunk in chunks(self.ids, 500):
            rows = Image.objects.filter(pk__in=list(chunk)).select_related("repository")
            by_id = {image.pk: image for image in rows}
            yield from (by_id[pk] for pk in chunk if pk in by_id)


@dataclass
class SweepResult:
    scheduled: ScheduledImages = field(default_factory=ScheduledImages)
    in_use: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    """Checks and sightings not written yet."""

    create: list[DeletionCheck] = field(default_factory=list)
    used: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    scheduled: int = 0

    def __len__(self) -> int:
        return len(self.create) + len(self.used)


def do_sweep(
    *, actor: str = WORKER, now: datetime | None = None, dry_run: bool = False
) -> SweepResult:
    """Schedule a check for every image of an opted-in repository that no source uses and that
    has no open check. Schedules nothing when a source failed."""
    now = now or clock.now()
    snapshot = usage.take_snapshot(now)
    result = SweepResult(errors=snapshot.errors)
    if not snapshot.complete:
        return result
    pending = _Pending()
    for repository in Repository.objects.filter(
        opted_in=True, deleted_at__isnull=True
    ).select_related("account"):
        if snapshot.unreadable_for(repository.account.account_id):
            continue  # a reference to this registry cannot be read: judge nothing in it
        _sweep_repository(repository, snapshot, result, pending, now, actor)
        if len(pending) >= WRITE_BATCH:
            _write(pending, now, dry_run)
    _write(pending, now, dry_run)
    if dry_run:
        return result
    with transaction.atomic():
        audit.record(
            actor,
            "cleanup.swept",
            target_type="cleanup",
            details={
                "scheduled": pending.scheduled,
                "bytes": result.bytes,
                "in_use": result.in_use,
            },
            at=now,
        )
    return result


def _sweep_repository(
    repository: Repository,
    snapshot: usage.Snapshot,
    result: SweepResult,
    pending: _Pending,
    now: datetime,
    actor: str,
) -> None:
    images = list(Image.objects.present().filter(repository=repository).only(*SWEEP_FIELDS))
    state = usage.RepositoryState.build(True, [image_info(image) for image in images])
    protected = {image.digest for image in images if image.protected}
    open_images = set(
        DeletionCheck.objects.filter(
            status__in=DeletionCheck.OPEN, image__repository=repository
        ).values_list("image_id", flat=True)
    )
    for image in images:
        if image.pk in open_images or _kept(image, repository, state, protected, now):
            continue
        if image.storage_status != "ACTIVE":  # archived: see cleanup.actions.archive
            continue
        references = _references(snapshot, repository, state, image.digest)
        if references:
            pending.used[image.pk] = [ref.as_dict() for ref in references[:20]]
            result.in_use += 1
            continue
        result.scheduled.append(image.pk)
        result.bytes += image.size_bytes
        pending.create.append(_new_check(image, repository, now, actor))


def _write(pending: _Pending, now: datetime, dry_run: bool) -> None:
    """Write what is pending (nothing in a dry run) and forget it. A conflict (a check opened by
    an event meanwhile) is skipped by the one-open-check constraint."""
    if not dry_run:
        with transaction.atomic():
            mark_used(pending.used, now)
            DeletionCheck.objects.bulk_create(pending.create, batch_size=500, ignore_conflicts=True)
        pending.scheduled += len(pending.create)
    pending.create, pending.used = [], {}


def _kept(
    image: Image,
    repository: Repository,
    state: usage.RepositoryState,
    protected: set[str],
    now: datetime,
) -> bool:
    """Kept by an operator's rule, its index's rule, or a recent pull: no check is needed."""
    if rules.kept_by_rule(image.digest, repository, state, protected):
        return True
    if rules.recently_pulled(image.last_pulled_at, now):
        return True
    return any(
        rules.kept_by_rule(parent, repository, state, protected)
        for parent in state.parents.get(image.digest, ())
    )


def _references(
    snapshot: usage.Snapshot, repository: Repository, state: usage.RepositoryState, digest: str
) -> list[usage.Reference]:
    references = usage.references_to_image(snapshot, repository.key, state, digest)
    for parent in state.parents.get(digest, ()):
        references += usage.references_to_image(snapshot, repository.key, state, parent)
    return references


def _new_check(image: Image, repository: Repository, now: datetime, actor: str) -> DeletionCheck:
    due = now + repository.effective_grace
    check = DeletionCheck(
        image=image,
        trigger=DeletionCheck.Trigger.SWEEP,
        trigger_ref=f"sweep {now:%Y-%m-%d %H:%M}",
        due_at=due,
        created_at=now,
        updated_at=now,
    )
    check.add_to_timeline(
        now, Status.SCHEDULED, f"no source uses it; due {due:%Y-%m-%d %H:%M:%S}", actor
    )
    return check
