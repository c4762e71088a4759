"""The sweep: images no event ever names (pushed but never deployed, or deregistered before the
console existed) get a check too, so a repository reaches a clean state by itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

import audit
from cleanup import aws, rules, usage
from cleanup.actions.common import WORKER, Status, chunks
from cleanup.actions.decide import mark_used
from cleanup.models import DeletionCheck, Image, Repository
from console import clock


@dataclass
class SweepResult:
    scheduled: list[Image] = field(default_factory=list)
    in_use: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


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
    open_images = set(
        DeletionCheck.objects.filter(status__in=DeletionCheck.OPEN).values_list(
            "image_id", flat=True
        )
    )
    used: dict[int, list[dict[str, Any]]] = {}
    create: list[DeletionCheck] = []
    for repository in Repository.objects.filter(
        opted_in=True, deleted_at__isnull=True
    ).select_related("account"):
        if snapshot.unreadable_for(repository.account.account_id):
            continue  # a reference to this registry cannot be read: judge nothing in it
        images = list(Image.objects.present().filter(repository=repository))
        state = usage.RepositoryState.build(True, [_info(image) for image in images])
        protected = {image.digest for image in images if image.protected}
        for image in images:
            if image.pk in open_images or _kept(image, repository, state, protected, now):
                continue
            references = _references(snapshot, repository, state, image.digest)
            if references:
                used[image.pk] = [ref.as_dict() for ref in references[:20]]
                continue
            result.scheduled.append(image)
            result.bytes += image.size_bytes
            create.append(_new_check(image, repository, now, actor))
    result.in_use = len(used)
    if dry_run:
        return result
    with transaction.atomic():
        mark_used(used, now)
    # In chunks, so the one SQLite writer is free between them; a conflict (a check opened by an
    # event meanwhile) is skipped by the one-open-check constraint.
    for chunk in chunks(create, 2000):
        with transaction.atomic():
            DeletionCheck.objects.bulk_create(chunk, batch_size=500, ignore_conflicts=True)
    with transaction.atomic():
        audit.record(
            actor,
            "cleanup.swept",
            target_type="cleanup",
            details={"scheduled": len(create), "bytes": result.bytes, "in_use": len(used)},
            at=now,
        )
    return result


def _info(image: Image) -> aws.ImageInfo:
    return aws.ImageInfo(
        image.digest,
        image.tags,
        image.pushed_at,
        image.size_bytes,
        image.media_type,
        image.child_digests,
        image.last_pulled_at,
    )


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
