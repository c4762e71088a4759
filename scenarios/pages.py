"""A console full of rows, written straight to the database with bulk inserts (no AWS).

``build(Scale.issue())`` is the data set of issue 10 (3 accounts, 200 repositories, 50,000
images, 10,000 checks, 50 breakers with 20,000 transitions, 200,000 audit events, 100,000
inbox events) that ``bench/pages.py`` times every page on; ``build(Scale.small())`` gives every
page of the browser tests a few rows of every kind (tests/e2e/test_accessibility.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

REGISTRY = "111111111111"
PROD = "222222222222"
DEV = "333333333333"
REGION = "eu-west-1"
BATCH = 5000


@dataclass(frozen=True)
class Scale:
    repositories: int
    images: int
    checks: int
    breakers: int
    transitions: int
    probes: int
    audit_events: int
    inbox_events: int

    @classmethod
    def issue(cls) -> Scale:
        return cls(200, 50_000, 10_000, 50, 20_000, 5_000, 200_000, 100_000)

    @classmethod
    def small(cls) -> Scale:
        return cls(3, 24, 16, 4, 24, 12, 60, 40)


@dataclass
class Built:
    accounts: list[Any]
    repositories: list[Any]
    checks: list[Any]
    breakers: list[Any]
    events: list[Any]


def digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


CHECK_STATUSES = [
    # (status, share of the checks)
    ("awaiting_approval", 24),
    ("in_use", 36),
    ("deleted", 20),
    ("rejected", 5),
    ("failed", 5),
    ("scheduled", 6),
    ("approved", 2),
    ("cancelled", 2),
]
TRIGGERS = ["sweep", "task_definition_inactive", "manual"]
BREAKER_STATES = ["closed", "closed", "open", "half_open"]
AUDIT_ACTIONS = [
    ("check.approved", "deletion_check"),
    ("check.rejected", "deletion_check"),
    ("image.deleted", "ecr_image"),
    ("image.protected", "ecr_image"),
    ("repository.opted_in", "ecr_repository"),
    ("breaker.opened", "breaker"),
    ("breaker.closed", "breaker"),
    ("breaker.half_opened", "breaker"),
    ("account.verified", "aws_account"),
    ("webhook.reprocessed", "inbound_event"),
]


def inbox_status(n: int) -> str:
    """An inbox that keeps up: one event in a hundred failed, one waiting, a tenth ignored."""
    if n % 100 == 7:
        return "failed"
    if n % 100 == 3:
        return "received"
    return "ignored" if n % 10 == 5 else "processed"


INBOX_NOTES = {
    "ignored": "malformed alarm state change: KeyError 'timestamp'",
    "failed": "",
}


def _evidence(n: int) -> dict[str, Any]:
    sources = ["ecs_task_definitions", "ecs_services", "ecs_tasks", "lambda_functions"]
    return {
        "sources": {
            name: {"ok": True, "accounts": [PROD, DEV], "references": 0} for name in sources
        },
        "decided": "unused" if n % 3 else "in_use",
    }


@transaction.atomic
def build(scale: Scale, now: datetime) -> Built:
    """Write the rows; ``now`` is the time the newest of them happened."""
    from accounts.models import AwsAccount
    from audit.models import AuditEvent
    from breaker.models import Breaker, BreakerTransition, Probe
    from cleanup.models import DeletionCheck, Image, Repository
    from webhooks.models import InboundEvent

    accounts = [
        AwsAccount.objects.create(
            account_id=REGISTRY,
            name="shared",
            environment="shared",
            is_registry=True,
            regions=[REGION],
            last_verified_at=now - timedelta(hours=1),
            last_verification_ok=True,
        ),
        AwsAccount.objects.create(
            account_id=PROD,
            name="production",
            environment="prod",
            regions=[REGION],
            role_arn=f"arn:aws:iam::{PROD}:role/platform-console",
            last_verified_at=now - timedelta(hours=2),
            last_verification_ok=True,
        ),
        AwsAccount.objects.create(
            account_id=DEV,
            name="development",
            environment="dev",
            regions=[REGION],
            role_arn=f"arn:aws:iam::{DEV}:role/platform-console",
            last_verified_at=now - timedelta(hours=3),
            last_verification_ok=False,
            last_verification_error="AccessDenied: not authorized to perform sts:AssumeRole",
        ),
    ]
    registry = accounts[0]

    repositories = Repository.objects.bulk_create(
        [
            Repository(
                account=registry,
                region=REGION,
                name=f"team-{n % 7}/service-{n:03d}",
                arn=f"arn:aws:ecr:{REGION}:{REGISTRY}:repository/team-{n % 7}/service-{n:03d}",
                uri=f"{REGISTRY}.dkr.ecr.{REGION}.amazonaws.com/team-{n % 7}/service-{n:03d}",
                opted_in=n % 4 != 3,
                bytes_reclaimed=0,
                last_synced_at=now - timedelta(minutes=n % 60),
            )
            for n in range(scale.repositories)
        ],
        batch_size=BATCH,
    )

    def image(n: int) -> Image:
        repository = repositories[n % len(repositories)]
        pushed = now - timedelta(days=3 + n % 200, minutes=n % 1440)
        return Image(
            repository=repository,
            digest=digest("image", n),
            tags=[f"v{n}"] if n % 5 else [],
            pushed_at=pushed,
            size_bytes=20_000_000 + (n * 7919) % 400_000_000,
            media_type="application/vnd.docker.distribution.manifest.v2+json",
            last_pulled_at=pushed + timedelta(days=1) if n % 3 else None,
            first_seen_at=pushed,
            deleted_at=None,
        )

    images: list[Image] = []
    for start in range(0, scale.images, BATCH):
        images += Image.objects.bulk_create(
            [image(n) for n in range(start, min(scale.images, start + BATCH))]
        )

    statuses = [status for status, share in CHECK_STATUSES for _ in range(share)]

    def check(n: int) -> DeletionCheck:
        status = statuses[(n * 37) % len(statuses)]
        updated = now - timedelta(minutes=7 * n % (60 * 24 * 60))
        decided = status in {"deleted", "rejected", "approved"}
        return DeletionCheck(
            image=images[n],
            status=status,
            trigger=TRIGGERS[n % len(TRIGGERS)],
            trigger_ref=f"arn:aws:ecs:{REGION}:{PROD}:task-definition/service-{n % 200}:{n % 40}",
            due_at=updated - timedelta(hours=1),
            created_at=updated - timedelta(days=1),
            updated_at=updated,
            evidence=_evidence(n),
            decided_by="oscar" if decided else "",
            decided_at=updated if decided else None,
            decision_reason="still needed by the batch job" if status == "rejected" else "",
            approved_by="oscar" if status in {"deleted", "approved"} else "",
            attempts=2 if status == "failed" else 1,
            last_error="ThrottlingException: Rate exceeded" if status == "failed" else "",
            bytes_reclaimed=images[n].size_bytes if status == "deleted" else 0,
        )

    checks: list[DeletionCheck] = []
    for start in range(0, min(scale.checks, len(images)), BATCH):
        checks += DeletionCheck.objects.bulk_create(
            [check(n) for n in range(start, min(scale.checks, len(images), start + BATCH))]
        )
    deleted_ids = [c.image_id for c in checks if c.status == "deleted"]
    for start in range(0, len(deleted_ids), BATCH):
        Image.objects.filter(pk__in=deleted_ids[start : start + BATCH]).update(
            deleted_at=now - timedelta(days=1), deleted_by_console=True
        )
    by_repository: dict[int, int] = {}
    for n, c in enumerate(checks):
        if c.status == "deleted":
            key = images[n].repository_id
            by_repository[key] = by_repository.get(key, 0) + c.bytes_reclaimed
    for repository_id, total in by_repository.items():
        Repository.objects.filter(pk=repository_id).update(bytes_reclaimed=total)

    breakers = []
    for n in range(scale.breakers):
        state = BREAKER_STATES[n % len(BREAKER_STATES)]
        account = accounts[1 + n % 2]
        breakers.append(
            Breaker(
                name=f"orders-{n:02d}",
                account=account,
                region=REGION,
                function_name=f"orders-consumer-{n:02d}",
                mapping_uuid=f"{n:08d}-0000-4000-8000-000000000000",
                queue_arn=f"arn:aws:sqs:{REGION}:{account.account_id}:orders-{n:02d}",
                queue_url=f"https://sqs.{REGION}.amazonaws.com/{account.account_id}/orders-{n:02d}",
                alarms=[f"orders-{n:02d}-errors"],
                state=state,
                next_probe_at=now + timedelta(seconds=30) if state == "half_open" else None,
                mapping_state="Disabled" if state != "closed" else "Enabled",
            )
        )
    breakers = Breaker.objects.bulk_create(breakers)
    cycle = [("closed", "open", "alarm"), ("open", "half_open", "timer"),
             ("half_open", "closed", "probe"), ("closed", "open", "manual")]  # fmt: skip
    transitions = []
    for n in range(scale.transitions):
        breaker = breakers[n % len(breakers)]
        step = n // len(breakers)
        from_state, to_state, cause = cycle[step % len(cycle)]
        transitions.append(
            BreakerTransition(
                breaker=breaker,
                from_state=from_state,
                to_state=to_state,
                cause=cause,
                actor="worker" if cause != "manual" else "oscar",
                reason="Threshold Crossed: 1 datapoint [12.0] was greater than 5.0",
                at=now - timedelta(minutes=90 + 30 * step + n % 7),
            )
        )
    BreakerTransition.objects.bulk_create(transitions, batch_size=BATCH)
    outcomes = ["passed", "failed", "no_message", "passed"]
    Probe.objects.bulk_create(
        [
            Probe(
                breaker=breakers[n % len(breakers)],
                at=now - timedelta(minutes=5 * (n // len(breakers)) + 1),
                message_id=f"m-{n}",
                outcome=outcomes[n % len(outcomes)],
                duration_ms=120 + n % 400,
                detail="TimeoutError: Task timed out after 3.00 seconds" if n % 4 == 1 else "",
            )
            for n in range(scale.probes)
        ],
        batch_size=BATCH,
    )

    def audit_event(n: int) -> AuditEvent:
        action, target_type = AUDIT_ACTIONS[n % len(AUDIT_ACTIONS)]
        target_id: object
        label: str
        if target_type == "deletion_check":
            target = checks[n % len(checks)] if checks else None
            target_id, label = (target.pk, f"check {target.pk}") if target else ("", "")
        elif target_type == "ecr_image":
            target = images[n % len(images)]
            name = repositories[(n % len(images)) % len(repositories)].name
            target_id, label = target.digest, f"{name}:v{n}@{target.digest[7:19]}"
        elif target_type == "ecr_repository":
            target = repositories[n % len(repositories)]
            target_id, label = target.arn, target.name
        elif target_type == "breaker":
            target = breakers[n % len(breakers)]
            target_id, label = target.pk, target.name
        elif target_type == "aws_account":
            target_id, label = PROD, "production"
        else:
            target_id, label = 1 + n % max(1, scale.inbox_events), "alarm state change"
        return AuditEvent(
            at=now - timedelta(seconds=13 * n),
            actor=["oscar", "worker", "webhook:sns", "cli:root"][n % 4],
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            target_label=label,
            account_id=REGISTRY if target_type in {"ecr_image", "ecr_repository"} else PROD,
            details={"reason": "routine"} if n % 3 == 0 else {},
        )

    for start in range(0, scale.audit_events, BATCH):
        AuditEvent.objects.bulk_create(
            [audit_event(n) for n in range(start, min(scale.audit_events, start + BATCH))]
        )

    def inbox_event(n: int) -> InboundEvent:
        status = inbox_status(n)
        alarm = n % 2 == 0
        received = now - timedelta(seconds=26 * n)
        body = {"id": f"evt-{n}", "source": "aws.cloudwatch", "detail": {"alarmName": "x"}}
        return InboundEvent(
            source="eventbridge" if n % 3 else "sns",
            dedupe_key=f"evt-{n:07d}",
            kind="alarm_state_change" if alarm else "task_definition_deregistered",
            raw_body=json.dumps(body),
            received_at=received,
            status=status,
            note=INBOX_NOTES.get(status, "breaker orders-01 opened") if alarm else "",
            error="KeyError: 'detail'" if status == "failed" else "",
            attempts=5 if status == "failed" else (0 if status == "received" else 1),
            processed_at=received + timedelta(seconds=1) if status != "received" else None,
            history=[{"at": received.isoformat(), "what": "received", "text": ""}],
            account_id=PROD,
            detail_type="CloudWatch Alarm State Change" if alarm else "ECS Task Definition",
            summary=f"orders-{n % 50:02d}-errors ALARM" if alarm else f"service-{n % 200}:{n % 40}",
        )

    events: list[InboundEvent] = []
    for start in range(0, scale.inbox_events, BATCH):
        events += InboundEvent.objects.bulk_create(
            [inbox_event(n) for n in range(start, min(scale.inbox_events, start + BATCH))]
        )
    return Built(accounts, repositories, checks, breakers, events)
