"""A check's evidence as the pages show it: for THIS image, what every source answered, the
references that matched it, and the times that judge it. Built from the decision record
(``DeletionCheck.evidence``) and the snapshot's answers per region, never from the snapshot's
totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cleanup import words
from cleanup.actions.decide import LOOKED_UP
from cleanup.models import DeletionCheck


@dataclass
class SourceRow:
    source: str
    account_id: str
    answered: list[str] = field(default_factory=list)
    not_offered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    here: int | None = None  # references to this image; None: not looked up
    references: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return words.source(self.source)


@dataclass
class ImageEvidence:
    outcome: str
    reason: str
    taken_at: datetime | None
    complete: bool
    looked_up: bool
    reference_count: int
    rows: list[SourceRow]
    asked: dict[str, Any]
    pushed_at: datetime | None
    last_pulled_at: datetime | None
    last_used_at: datetime | None

    @property
    def outcome_words(self) -> str:
        return words.outcome(self.outcome)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _key(source: str, account_id: str) -> str:
    return f"{source}|{account_id}"


def of_check(check: DeletionCheck) -> ImageEvidence | None:
    record = check.evidence
    if not record:
        return None
    references: list[dict[str, Any]] = record.get("references", [])
    looked_up = record.get("references_checked", record.get("outcome") in LOOKED_UP)
    matched: dict[str, int] = record.get("matched") or {}
    if "matched" not in record:  # a record of before this field: count what it kept
        for ref in references:
            key = _key(ref["source"], ref["account_id"])
            matched[key] = matched.get(key, 0) + 1
    rows: dict[str, SourceRow] = {}
    answers = check.snapshot.sources if check.snapshot else []
    for answer in answers:
        key = _key(answer["source"], answer["account_id"])
        row = rows.setdefault(key, SourceRow(answer["source"], answer["account_id"]))
        if not answer.get("ok", True):
            row.errors.append(f"{answer['region']}: {answer.get('error', '')}")
        elif answer.get("note"):
            row.not_offered.append(answer["region"])
        else:
            row.answered.append(answer["region"])
    for key in matched:  # a source the stored snapshot no longer lists still shows its finds
        source, _, account_id = key.partition("|")
        rows.setdefault(key, SourceRow(source, account_id))
    for key, row in rows.items():
        row.here = matched.get(key, 0) if looked_up else None
        row.references = [
            ref for ref in references if _key(ref["source"], ref["account_id"]) == key
        ]
    image = check.image
    return ImageEvidence(
        outcome=record.get("outcome", ""),
        reason=record.get("reason", ""),
        taken_at=_time(record.get("taken_at")),
        complete=record.get("complete", False),
        looked_up=looked_up,
        reference_count=record.get("reference_count", len(references)),
        rows=sorted(rows.values(), key=lambda row: (row.name, row.account_id)),
        asked=record.get("asked")
        or {
            "uri": f"{image.repository.uri}@{image.digest}",
            "digests": [image.digest],
            "tags": image.tags,
        },
        pushed_at=_time(record.get("pushed_at")) or image.pushed_at,
        last_pulled_at=_time(record.get("last_pulled_at")) or image.last_pulled_at,
        last_used_at=_time(record.get("last_used_at")) or image.last_used_at,
    )
