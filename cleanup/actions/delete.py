"""Deleting the images of approved checks. Everything is judged again at this moment (the
approval may be hours old: a tag may have moved, a service may have started using the image, the
repository may have been opted out). By digest only, at most 100 ids a call, indexes first."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q

import audit
from cleanup import aws, rules, usage
from cleanup.actions import archive
from cleanup.actions.common import WORKER, Status, check_target, chunks
from cleanup.actions.decide import (
    CLAIM_LEASE,
    config_uris,
    load_checks,
    protected_digests,
    save_snapshot,
)
from cleanup.actions.inventory import read_repository_states
from cleanup.actions.outcomes import (
    ANSWER_LOST,
    DeleteResult,
    Evidence,
    record_delete_failure,
    record_deleted,
    record_would_delete,
    refuse_deletion,
)
from cleanup.models import DeletionCheck, Image, Repository
from cleanup.rules import Outcome
from console import clock

logger = logging.getLogger(__name__)
DELETE_PASS_LIMIT = 1000


def do_delete_due(*, now: datetime | None = None) -> DeleteResult:
    """The recurring deletion pass: approved checks that no run holds and whose retry is due
    (a deletion task lost with its worker, or AWS that did not answer last time)."""
    now = now or clock.now()
    ids = list(
        DeletionCheck.objects.filter(status=Status.APPROVED, due_at__lte=now)
        .filter(Q(claim="") | Q(claimed_at__lt=now - CLAIM_LEASE))
        .values_list("id", flat=True)[:DELETE_PASS_LIMIT]
    )
    return do_delete_images(ids, now=now) if ids else DeleteResult()


def do_delete_images(check_ids: list[int], *, now: datetime | None = None) -> DeleteResult:
    """Delete the images of approved checks this run can claim. Whatever goes wrong, no check
    stays claimed: the ones not done keep their approval, record the error and are retried."""
    now = now or clock.now()
    token = uuid.uuid4().hex
    DeletionCheck.objects.filter(pk__in=check_ids, status=Status.APPROVED).filter(
        Q(claim="") | Q(claimed_at__lt=now - CLAIM_LEASE)
    ).update(claim=token, claimed_at=now)
    checks = load_checks(DeletionCheck.objects.filter(claim=token, status=Status.APPROVED))
    result = DeleteResult()
    if not checks:
        return result
    try:
        _delete_claimed(checks, now, result)
    except Exception as exc:  # released below, whatever it was (AWS, database, a bug)
        logger.exception("deletion run %s stopped", token)
        _release(token, now, f"{type(exc).__name__}: {exc}", result)
    return result


def _release(token: str, now: datetime, error: str, result: DeleteResult) -> None:
    for check in load_checks(DeletionCheck.objects.filter(claim=token, status=Status.APPROVED)):
        check.save(update_fields=check.retry_deletion(now=now, error=error, actor=WORKER))
        result.failed.append(check.pk)


def _delete_claimed(checks: list[DeletionCheck], now: datetime, result: DeleteResult) -> None:
    by_repository: dict[int, list[DeletionCheck]] = defaultdict(list)
    for check in checks:
        by_repository[check.image.repository.pk].append(check)
    repositories = [group[0].image.repository for group in by_repository.values()]
    states, state_errors = read_repository_states(repositories)
    # Regions discovered again: one enabled since the decision may already run the image.
    snapshot = usage.take_snapshot(now, config_uris=config_uris(checks, states), fresh_regions=True)
    run = Evidence(snapshot, save_snapshot(snapshot, "delete"))
    protected = protected_digests(repositories)
    for repository in repositories:
        _delete_in_repository(
            repository,
            by_repository[repository.pk],
            states.get(repository.pk),
            state_errors.get(repository.pk, ""),
            run,
            protected.get(repository.pk, set()),
            now,
            result,
        )


def _delete_in_repository(
    repository: Repository,
    checks: list[DeletionCheck],
    state: usage.RepositoryState | None,
    state_error: str,
    run: Evidence,
    protected: set[str],
    now: datetime,
    result: DeleteResult,
) -> None:
    # Read the image rows again: an operator may have protected one since the checks were loaded.
    fresh = Image.objects.filter(pk__in=[check.image_id for check in checks]).in_bulk()
    for check in checks:
        check.image.protected = fresh[check.image_id].protected
        check.image.last_used_at = fresh[check.image_id].last_used_at
    protected = protected | {image.digest for image in fresh.values() if image.protected}
    deleted: set[str] = set()
    present = set(state.images) if state else set()
    # Indexes and single images first, then index children once their index is gone.
    first = [check for check in checks if not (state and state.parents.get(check.image.digest))]
    second = [check for check in checks if check not in first]

    def parent_stays(parent: str) -> bool:
        return parent in present and parent not in deleted

    for phase in (first, second):
        ready = _judge_again(
            phase,
            repository,
            state,
            state_error,
            run,
            protected,
            now,
            result,
            parent_stays=parent_stays,
        )
        if settings.CLEANUP_DRY_RUN:
            for check, verdict in ready:
                record_would_delete(check, verdict, run, now, result)
                deleted.add(check.image.digest)
            continue
        # Repositories that archive: archived instead (archive-then-delete deletes the images
        # archived long enough). An archived index lets its children follow it into the archive.
        to_archive, ready = archive.split_ready(repository, ready, state, now)
        deleted.update(archive.archive_ready(repository, to_archive, state, run, now, result))
        for chunk in chunks(ready, aws.MAX_DELETE_BATCH):
            deleted.update(_delete_chunk(repository, chunk, run, now, result))


def _judge_again(
    checks: list[DeletionCheck],
    repository: Repository,
    state: usage.RepositoryState | None,
    state_error: str,
    run: Evidence,
    protected: set[str],
    now: datetime,
    result: DeleteResult,
    *,
    parent_stays: Callable[[str], bool],
) -> list[tuple[DeletionCheck, rules.Verdict]]:
    """The checks whose image may be deleted now; every other one is refused and recorded."""
    ready = []
    for check in checks:
        if _deleted_with_answer_lost(check, state):
            record_deleted(
                check,
                rules.Verdict(Outcome.GONE, ANSWER_LOST),
                run,
                now,
                result,
                how=ANSWER_LOST,
            )
            continue
        verdict = rules.judge(
            check.image,
            repository,
            state,
            state_error,
            run.snapshot,
            now,
            protected=protected,
            parent_stays=parent_stays,
        )
        if (
            verdict.outcome == Outcome.UNUSED
            and repository.approval_required
            and not check.approved_by
        ):
            verdict = rules.Verdict(
                Outcome.NEEDS_APPROVAL, "the repository requires approval and nobody approved"
            )
        if verdict.outcome == Outcome.UNUSED:
            ready.append((check, verdict))
        else:
            refuse_deletion(check, verdict, run, now, result)
    return ready


def _deleted_with_answer_lost(check: DeletionCheck, state: usage.RepositoryState | None) -> bool:
    """The console called BatchDeleteImage for this image, the answer never came, and ECR no
    longer has the image: the console deleted it."""
    return (
        check.delete_attempted_at is not None
        and state is not None
        and state.exists
        and check.image.digest not in state.images
    )


def _delete_chunk(
    repository: Repository,
    chunk: Sequence[tuple[DeletionCheck, rules.Verdict]],
    run: Evidence,
    now: datetime,
    result: DeleteResult,
) -> set[str]:
    """One ``BatchDeleteImage`` call and what it did to each check; returns the digests gone."""
    digests = [check.image.digest for check, _ in chunk]
    # Noted before the call: if its answer is lost, the next run knows an absent image was ours.
    DeletionCheck.objects.filter(pk__in=[check.pk for check, _ in chunk]).update(
        delete_attempted_at=now
    )
    result.calls += 1
    try:
        outcome = aws.batch_delete_images(
            repository.account, repository.region, repository.name, digests
        )
    except aws.CleanupAwsError as exc:
        # No answer (or a refusal of the whole call): AWS may or may not have acted. The
        # approvals stand; the next run judges again and finds out from ECR.
        error = f"BatchDeleteImage: {exc}"
        with transaction.atomic():
            for check, _ in chunk:
                check.delete_attempted_at = now
                check.save(update_fields=check.retry_deletion(now=now, error=error, actor=WORKER))
                audit.record(
                    WORKER,
                    "image.delete_failed",
                    details={"code": exc.code, "reason": str(exc), "digest": check.image.digest},
                    at=now,
                    **check_target(check),
                )
                result.failed.append(check.pk)
        return set()
    failures = {digest: (code, reason) for digest, code, reason in outcome.failures}
    gone = set()
    with transaction.atomic():
        for check, verdict in chunk:
            digest = check.image.digest
            if digest in failures:
                record_delete_failure(check, *failures[digest], now, result)
            else:
                record_deleted(check, verdict, run, now, result)
                gone.add(digest)
    return gone
