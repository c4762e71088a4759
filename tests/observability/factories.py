"""Rows for tests that need a deletion check without going through AWS."""

from __future__ import annotations

from datetime import UTC, datetime

from accounts.models import AwsAccount
from cleanup.models import DeletionCheck, Image, Repository

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def awaiting_check(
    digest: str = "sha256:" + "a" * 64, account_id: str = "111111111111"
) -> DeletionCheck:
    account, _ = AwsAccount.objects.get_or_create(
        account_id=account_id,
        defaults={"name": f"registry-{account_id}", "is_registry": True, "regions": ["eu-west-1"]},
    )
    repository, _ = Repository.objects.get_or_create(
        account=account,
        region="eu-west-1",
        name="web",
        arn="arn:aws:ecr:eu-west-1:111111111111:repository/web",
        uri="111111111111.dkr.ecr.eu-west-1.amazonaws.com/web",
        opted_in=True,
    )
    image = Image.objects.create(repository=repository, digest=digest, size_bytes=1000)
    return DeletionCheck.objects.create(
        image=image,
        status=DeletionCheck.Status.AWAITING_APPROVAL,
        trigger=DeletionCheck.Trigger.SWEEP,
        due_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
