"""Human words for the code names of the cleanup app (sources, statuses, triggers, outcomes).
Pages write these and keep the code name in a ``title`` for searching."""

from __future__ import annotations

from cleanup.models import DeletionCheck
from cleanup.rules import Outcome
from cleanup.usage import SOURCE_NAMES

OUTCOMES: dict[str, str] = {
    Outcome.IN_USE: "In use",
    Outcome.RECENTLY_PULLED: "Recently pulled (kept)",
    Outcome.KEPT: "Kept by a rule",
    Outcome.GONE: "Already gone from ECR",
    Outcome.NOT_OPTED_IN: "Repository not opted in",
    Outcome.UNKNOWN: "Unknown: kept, asked again later",
    Outcome.TOO_RECENT: "Used within the grace period",
    Outcome.NEEDS_APPROVAL: "Unused, waits for approval",
    Outcome.UNUSED: "Unused",
}
STATUSES: dict[str, str] = dict(DeletionCheck.Status.choices)
TRIGGERS: dict[str, str] = dict(DeletionCheck.Trigger.choices)


def source(code: str) -> str:
    return SOURCE_NAMES.get(code, code.replace("_", " "))


def outcome(code: str) -> str:
    return OUTCOMES.get(code, code.replace("_", " "))


def status(code: str) -> str:
    return STATUSES.get(code, code.replace("_", " "))


def trigger(code: str) -> str:
    return TRIGGERS.get(code, code.replace("_", " "))
