"""Deciding due checks: claim them so no other worker does, read ECR and one usage snapshot for
the whole batch, and judge each image (``cleanup.rules``). Never "unused" on partial evidence."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet

import audit
from cleanup import rules, usage
from cleanup.actions.common import WORKER, Status, check_target, chunks
from cleanup.actions.inventory import RepositoryStates
from cleanup.models import DeletionCheck, Image, RegistrySettings, Repository, UsageSnapshot
from cleanup.rules import Outcome
from console import clock

logger = logging.getLogger(__name__)
DECIDE_BATCH = 10_000
DECIDE_CHUNK = 500
CLAIM_LEASE = timedelta(minutes=15)
# The audit action of a decision, by the status it leaves the check in.
DECISION_ACTIONS: dict[str, str] = {
    Status.FAILED: "check.failed",
    Status.SCHEDULED: "check.rescheduled",
    Status.AWAITING_APPROVAL: "check.awaiting_approval",
    Status.APPROVED: "check.approved",
}


def claim_due_checks(now: datetime, limit: int = DECIDE_BATCH) -> tuple[str, list[int]]:
    """Take due checks so that no other worker takes them: ``select_for_update(skip_locked)``
    on PostgreSQL, a conditional update (only rows still in a due status) elsewhere. A check
    whose claim is older than the lease (its worker died) is due again."""
    token = uuid.uuid4().hex
    due = DeletionCheck.objects.filter(
        Q(status__in=[Status.SCHEDULED, Status.FAILED], due_at__lte=now)
        | Q(status=Status.RUNNING, claimed_at__lt=now - CLAIM_LEASE)
    ).order_by("due_at", "id")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
            for chunk in chunks(ids, 1000):
                DeletionCheck.objects.filter(id__in=chunk).update(
                    status=Status.RUNNING, claim=token, claimed_at=now
                )
        return token, ids
    candidates = list(due.values_list("id", "status")[:limit])
    for status in {status for _, status in candidates}:
        ids = [pk for pk, s in candidates if s == status]
        for chunk in chunks(ids, 900):
            still = DeletionCheck.objects.filter(id__in=chunk, status=status)
            if status == Status.RUNNING:
                still = still.filter(claimed_at__lt=now - CLAIM_LEASE)
            else:
                still = still.filter(due_at__lte=now)
            still.update(status=Status.RUNNING, claim=token, claimed_at=now)
    claimed = list(DeletionCheck.objects.filter(claim=token).values_list("id", flat=True))
    return token, claimed


@dataclass
class DecideResult:
    decided: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    snapshot_id: int | None = None
    errors: list[str] = field(default_factory=list)


def do_run_due_checks(
    *, actor: str = WORKER, now: datetime | None = None, limit: int = DECIDE_BATCH
) -> DecideResult:
    now = now or clock.now()
    token, ids = claim_due_checks(now, limit)
    if not ids:
        return DecideResult()
    try:
        return decide_claimed(token, actor=actor, now=now)
    except Exception as exc:  # whatever it was, no check stays claimed: fail and retry them
        logger.exception("decision run %s stopped", token)
        error = f"{type(exc).__name__}: {exc}"
        for check in load_checks(DeletionCheck.objects.filter(claim=token, status=Status.RUNNING)):
            check.save(update_fields=check.mark_failed(now=now, error=error, actor=actor))
        return DecideResult(errors=[error])


def load_checks(checks: QuerySet[DeletionCheck]) -> list[DeletionCheck]:
    return list(checks.select_related("image__repository__account"))


def config_uris(
    checks: list[DeletionCheck], states: dict[int, usage.RepositoryState]
) -> dict[str, list[str]]:
    """The image URIs (by digest and by every tag on it now) to ask the Config aggregators."""
    uris: dict[str, list[str]] = defaultdict(list)
    for check in checks:
        repository = check.image.repository
        state = states.get(repository.pk)
        digests = {check.image.digest, *check.image.child_digests}
        uris[repository.account.account_id] += [f"{repository.uri}@{digest}" for digest in digests]
        if state:
            uris[repository.account.account_id] += [
                f"{repository.uri}:{tag}" for tag in state.tags_of(digests)
            ]
    return uris


def save_snapshot(snapshot: usage.Snapshot, purpose: str) -> UsageSnapshot:
    return UsageSnapshot.objects.create(
        taken_at=snapshot.taken_at,
        purpose=purpose,
        complete=snapshot.complete,
        sources=snapshot.sources_json(),
        reference_count=sum(len(refs) for refs in snapshot.by_repository.values()),
    )


def protected_digests(repositories: list[Repository]) -> dict[int, set[str]]:
    protected: dict[int, set[str]] = defaultdict(set)
    rows = Image.objects.filter(repository__in=repositories, protected=True).values_list(
        "repository_id", "digest"
    )
    for repository_id, digest in rows:
        protected[repository_id].add(digest)
    return protected


# Outcomes whose judgement looked the image up in the snapshot: their verdict's references are
# this image's (none for "unused"). The others were decided by a rule before that step.
LOOKED_UP = frozenset({Outcome.IN_USE, Outcome.UNUSED, Outcome.TOO_RECENT, Outcome.NEEDS_APPROVAL})
EVIDENCE_REFERENCES = 50


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def image_evidence(
    image: Image, repository: Repository, state: usage.RepositoryState | None
) -> dict[str, Any]:
    """What was asked about this image and the times that judge it, as ECR gave them at the
    decision (the row in the database may be older)."""
    info = state.images.get(image.digest) if state else None
    digests = sorted({image.digest, *(info.child_digests if info else image.child_digests)})
    tags = sorted(state.tags_of(set(digests))) if state else sorted(image.tags)
    return {
        "asked": {"uri": f"{repository.uri}@{image.digest}", "digests": digests, "tags": tags},
        "pushed_at": _when(info.pushed_at if info else image.pushed_at),
        "last_pulled_at": _when(info.last_pulled_at if info else image.last_pulled_at),
        "last_used_at": _when(image.last_used_at),
    }


def image_references(
    image: Image,
    repository: Repository,
    state: usage.RepositoryState | None,
    snapshot: usage.Snapshot,
) -> list[usage.Reference] | None:
    """Every reference of the snapshot to this image (its digest, the tags on it now, an index's
    children, the indexes that list it), whatever the verdict; None when it cannot be said (ECR
    or a source did not answer)."""
    if state is None or not snapshot.complete or image.digest not in state.images:
        return None
    key = repository.key
    found = usage.references_to_image(snapshot, key, state, image.digest)
    for parent in sorted(state.parents.get(image.digest, set())):
        found += usage.references_to_image(snapshot, key, state, parent)
    return found


def evidence(
    verdict: rules.Verdict,
    snapshot: usage.Snapshot,
    stored: UsageSnapshot,
    *,
    image: Image | None = None,
    repository: Repository | None = None,
    state: usage.RepositoryState | None = None,
) -> dict[str, Any]:
    """The decision record of one check: the snapshot it was judged from, the rule that decided,
    and this image's own answer from every source (``matched``: references to it per
    ``source|account``), so a page never shows the snapshot's totals as the image's."""
    references = verdict.references
    looked_up = verdict.outcome in LOOKED_UP
    record: dict[str, Any] = {
        "snapshot_id": stored.pk,
        "taken_at": snapshot.taken_at.isoformat(),
        "complete": snapshot.complete,
        "errors": snapshot.errors,
        "scope": snapshot.scope_json(),
        "outcome": verdict.outcome,
        "reason": verdict.reason,
    }
    if image is not None and repository is not None:
        record.update(image_evidence(image, repository, state))
        own = image_references(image, repository, state, snapshot)
        if own is not None:
            references, looked_up = own, True
    matched: dict[str, int] = defaultdict(int)
    for ref in references:
        matched[f"{ref.source}|{ref.account_id}"] += 1
    record.update(
        references_checked=looked_up,
        reference_count=len(references),
        matched=dict(matched),
        references=[ref.as_dict() for ref in references[:EVIDENCE_REFERENCES]],
    )
    return record


def mark_used(used: dict[int, list[dict[str, Any]]], now: datetime) -> None:
    """Images a source references: their last use is now, and where they are used."""
    rows = list(Image.objects.filter(pk__in=list(used)))
    for row in rows:
        row.last_used_at = now
        row.usage = used[row.pk]
    Image.objects.bulk_update(rows, ["last_used_at", "usage"], batch_size=500)


def decide_claimed(token: str, *, actor: str, now: datetime) -> DecideResult:
    """Decide every check this worker claimed from one usage snapshot for the whole batch. The
    checks go by repository, a chunk at a time: each repository is read from ECR once, when its
    checks come up, and forgotten after them, so a batch never holds every image in memory."""
    from cleanup.actions.approvals import enqueue_deletion

    claimed = DeletionCheck.objects.filter(claim=token, status=Status.RUNNING)
    ids = list(claimed.order_by("image__repository_id", "id").values_list("id", flat=True))
    states = RepositoryStates()
    errors: list[str] = []
    uris: dict[str, list[str]] = {}
    aggregated = _checks_in_aggregated_registries(claimed)
    if aggregated:  # their registry's Config aggregator is asked about the tags ECR has now
        errors += states.read({check.image.repository for check in aggregated})
        uris = config_uris(aggregated, states.states)
        del aggregated
    snapshot = usage.take_snapshot(now, config_uris=uris)
    stored = save_snapshot(snapshot, "decide")
    result = DecideResult(snapshot_id=stored.pk, errors=snapshot.errors + errors)
    # Commit in chunks: SQLite has one writer, and the web must not wait for a whole batch.
    for chunk_ids in chunks(ids, DECIDE_CHUNK):
        checks = load_checks(
            claimed.filter(id__in=list(chunk_ids)).order_by("image__repository_id", "id")
        )
        repositories = list(
            {check.image.repository.pk: check.image.repository for check in checks}.values()
        )
        result.errors += states.read(repositories)
        protected = protected_digests(repositories)
        used: dict[int, list[dict[str, Any]]] = {}
        to_delete: list[int] = []
        with transaction.atomic():
            for check in checks:
                repository = check.image.repository
                verdict = rules.judge(
                    check.image,
                    repository,
                    states.get(repository.pk),
                    states.error(repository.pk),
                    snapshot,
                    now,
                    protected=protected.get(repository.pk, set()),
                )
                _apply_decision(
                    check, verdict, snapshot, stored, actor, now, states.get(repository.pk)
                )
                result.decided[check.status] += 1
                if verdict.outcome == Outcome.IN_USE:
                    used[check.image.pk] = [ref.as_dict() for ref in verdict.references[:20]]
                if check.status == Status.APPROVED:
                    to_delete.append(check.pk)
            mark_used(used, now)
            if to_delete:
                transaction.on_commit(partial(enqueue_deletion, to_delete))
        # In repository order, every repository of this chunk but the last is done.
        states.forget(repository.pk for repository in repositories[:-1])
    return result


def _checks_in_aggregated_registries(claimed: QuerySet[DeletionCheck]) -> list[DeletionCheck]:
    """The claimed checks of registries that have an AWS Config aggregator (usually none)."""
    registries = RegistrySettings.objects.exclude(config_aggregator_name="").filter(
        account__enabled=True
    )
    if not registries.exists():
        return []
    return load_checks(claimed.filter(image__repository__account__in=registries.values("account")))


def _apply_decision(
    check: DeletionCheck,
    verdict: rules.Verdict,
    snapshot: usage.Snapshot,
    stored: UsageSnapshot,
    actor: str,
    now: datetime,
    state: usage.RepositoryState | None = None,
) -> None:
    check.evidence = evidence(
        verdict, snapshot, stored, image=check.image, repository=check.image.repository, state=state
    )
    check.snapshot = stored
    fields = ["evidence", "snapshot", *check.apply_verdict(verdict, now=now, actor=actor)]
    if verdict.outcome == Outcome.GONE and check.image.deleted_at is None:
        check.image.deleted_at = now
        check.image.save(update_fields=["deleted_at"])
    check.save(update_fields=fields)
    audit.record(
        actor,
        DECISION_ACTIONS.get(check.status, f"check.{check.status}"),
        details={
            "outcome": verdict.outcome,
            "reason": verdict.reason,
            "references": len(verdict.references),
            "digest": check.image.digest,
        },
        at=now,
        **check_target(check),
    )
