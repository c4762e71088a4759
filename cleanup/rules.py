"""The decision of one check, as pure logic over what ECR and the usage sources said.

``judge`` is used twice: when a due check is decided, and again for every image at the moment of
deletion (then with ``parent_stays``), because an approval may be hours old. Every deletion safety
rule of DESIGN.md section 4 is one branch here, in the order a reader would ask them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings

from cleanup.models import Image, Repository
from cleanup.usage import Reference, RepositoryState, Snapshot, references_to_image
from console.templatetags.console import duration


class Outcome(StrEnum):
    """What one judgement says about an image."""

    IN_USE = "in_use"  # a usage source references it
    RECENTLY_PULLED = "recently_pulled"  # ECR saw a pull within CLEANUP_KEEP_PULLED_WITHIN
    KEPT = "kept"  # an operator's rule keeps it (protected, keep pattern, newest N)
    GONE = "gone"  # the image or its repository is no longer in ECR
    NOT_OPTED_IN = "not_opted_in"  # the repository does not carry the opt-in tag now
    UNKNOWN = "unknown"  # something could not be read: never "unused" on partial evidence
    TOO_RECENT = "too_recent"  # last used within the grace period
    NEEDS_APPROVAL = "needs_approval"  # unused, but nobody approved where approval is required
    UNUSED = "unused"  # every source answered and none uses it


# Outcomes that close a check as "in use": the image is kept because something uses it.
USED = frozenset({Outcome.IN_USE, Outcome.RECENTLY_PULLED})


@dataclass
class Verdict:
    outcome: Outcome
    reason: str
    references: list[Reference] = field(default_factory=list)
    retry_at: datetime | None = None


def kept_by_rule(
    image_digest: str, repository: Repository, state: RepositoryState, protected: set[str]
) -> str:
    """Why the operator's rules keep this digest (protected, keep pattern, newest N), or ''."""
    if image_digest in protected:
        return "protected by an operator"
    info = state.images.get(image_digest)
    tags = info.tags if info else []
    tag = repository.matches_keep_pattern(tags)
    if tag:
        return f"tag {tag} matches the keep pattern {repository.keep_tag_pattern}"
    if image_digest in state.newest(repository.keep_newest):
        return f"among the newest {repository.keep_newest} images"
    return ""


def recently_pulled(last_pulled_at: datetime | None, now: datetime) -> str:
    """Why ECR's last recorded pull keeps the image (``CLEANUP_KEEP_PULLED_WITHIN``), or ''.
    A pull is the only trace of consumers no AWS API lists: EKS, CI runners, laptops."""
    window: timedelta = settings.CLEANUP_KEEP_PULLED_WITHIN
    if not window or last_pulled_at is None or last_pulled_at <= now - window:
        return ""
    return (
        f"pulled {last_pulled_at:%Y-%m-%d %H:%M} UTC, within the last {duration(window)} "
        "(CLEANUP_KEEP_PULLED_WITHIN): a consumer the console cannot list may still use it"
    )


def judge(
    image: Image,
    repository: Repository,
    state: RepositoryState | None,
    state_error: str,
    snapshot: Snapshot,
    now: datetime,
    *,
    protected: set[str],
    parent_stays: Callable[[str], bool] | None = None,
) -> Verdict:
    """``protected``: digests of the repository an operator protected. ``parent_stays`` (at
    deletion time): whether an index that lists this image will still exist after this run."""
    if state_error or state is None:
        return Verdict(Outcome.UNKNOWN, f"ECR could not be read: {state_error}")
    if not state.exists:
        return Verdict(Outcome.GONE, "the repository no longer exists in ECR")
    if not state.opted_in:
        return Verdict(Outcome.NOT_OPTED_IN, "the repository does not carry the opt-in tag now")
    if image.digest not in state.images:
        return Verdict(Outcome.GONE, "the image is no longer in ECR")
    reason = kept_by_rule(image.digest, repository, state, protected)
    if reason:
        return Verdict(Outcome.KEPT, reason)
    reason = recently_pulled(state.images[image.digest].last_pulled_at, now)
    if reason:
        return Verdict(Outcome.RECENTLY_PULLED, reason)
    parents = state.parents.get(image.digest, set())
    for parent in sorted(parents):
        reason = kept_by_rule(parent, repository, state, protected)
        if reason:
            return Verdict(Outcome.KEPT, f"child of index {parent[:19]}, which is kept: {reason}")
    if not snapshot.complete:
        return Verdict(
            Outcome.UNKNOWN, "not every usage source answered: " + "; ".join(snapshot.errors)
        )
    unreadable = snapshot.unreadable_for(repository.account.account_id)
    if unreadable:
        return Verdict(
            Outcome.UNKNOWN,
            f"{len(unreadable)} image reference(s) name this registry but cannot be read: "
            + "; ".join(item.describe() for item in unreadable[:5]),
        )
    references = references_to_image(snapshot, repository.key, state, image.digest)
    for parent in sorted(parents):
        references += references_to_image(snapshot, repository.key, state, parent)
    if references:
        times = "once" if len(references) == 1 else f"{len(references)} times"
        return Verdict(Outcome.IN_USE, f"referenced {times}", references)
    if parent_stays is not None:
        staying = [parent for parent in sorted(parents) if parent_stays(parent)]
        if staying:
            return Verdict(Outcome.KEPT, f"child of index {staying[0][:19]}, which is kept")
    grace: timedelta = repository.effective_grace
    pulled = state.images[image.digest].last_pulled_at
    last_use = max([t for t in (image.last_use(), pulled) if t is not None], default=None)
    if last_use is not None and last_use > now - grace:
        return Verdict(
            Outcome.TOO_RECENT,
            f"last used {last_use:%Y-%m-%d %H:%M}, within the grace period",
            retry_at=last_use + grace,
        )
    return Verdict(Outcome.UNUSED, "no source references it and every source answered")
