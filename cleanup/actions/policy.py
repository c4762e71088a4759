"""What operators and admins decide about repositories and images: the opt-in tag, the keep
rules, protection, and the registry's settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

import audit
from accounts.models import AwsAccount
from cleanup import aws
from cleanup.actions.common import cancel_open_checks, image_target, opt_in_tag, repository_target
from cleanup.forms import PolicyForm, RegistrySettingsForm
from cleanup.models import DeletionCheck, Image, RegistrySettings, Repository
from console import clock

# What the policy form may change (its own fields, with the grace period as a duration).
POLICY_FIELDS = ["grace_period", "require_approval", *PolicyForm.Meta.fields]


def do_set_opt_in(
    repository: Repository, *, opted_in: bool, actor: str, now: datetime | None = None
) -> bool:
    """Write or remove the opt-in tag in ECR (AWS stays the source of truth), then mirror it.
    Opting out cancels the open checks that are not being worked on."""
    now = now or clock.now()
    key, value = opt_in_tag()
    account, region = repository.account, repository.region
    if opted_in:
        aws.set_repository_tag(account, region, repository.arn, key, value)
    else:
        aws.remove_repository_tag(account, region, repository.arn, key)
    with transaction.atomic():
        changed = repository.opted_in != opted_in
        repository.opted_in = opted_in
        repository.save(update_fields=["opted_in"])
        audit.record(
            actor,
            "repository.opted_in" if opted_in else "repository.opted_out",
            details={"tag": f"{key}={value}", "changed": changed},
            at=now,
            **repository_target(repository),
        )
        if not opted_in:
            cancel_open_checks(
                DeletionCheck.objects.filter(image__repository=repository),
                now=now,
                actor=actor,
                reason="the repository was opted out",
            )
    return changed


def do_update_policy(
    repository: Repository, *, actor: str, now: datetime | None = None, **changes: Any
) -> list[str]:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"not a policy field: {', '.join(sorted(unknown))}")
    changed = [name for name, value in changes.items() if getattr(repository, name) != value]
    if not changed:
        return []
    before = {name: getattr(repository, name) for name in changed}
    with transaction.atomic():
        for name in changed:
            setattr(repository, name, changes[name])
        repository.full_clean(exclude=["account"])
        repository.save(update_fields=changed)
        audit.record(
            actor,
            "repository.policy_changed",
            details={
                name: {"from": str(before[name]), "to": str(changes[name])} for name in changed
            },
            at=now or clock.now(),
            **repository_target(repository),
        )
    return changed


def do_protect_images(
    images: list[Image], *, actor: str, reason: str, now: datetime | None = None
) -> int:
    """Keep images for good. Their open checks that are not running are cancelled."""
    now = now or clock.now()
    count = 0
    with transaction.atomic():
        for image in images:
            if image.protected:
                continue
            image.protected, image.protected_by, image.protected_reason = True, actor, reason
            image.save(update_fields=["protected", "protected_by", "protected_reason"])
            audit.record(
                actor,
                "image.protected",
                details={"reason": reason, "repository": image.repository.name, "tags": image.tags},
                at=now,
                **image_target(image),
            )
            cancel_open_checks(
                image.checks.all(), now=now, actor=actor, reason=f"image protected: {reason}"
            )
            count += 1
    return count


def do_unprotect_image(image: Image, *, actor: str, now: datetime | None = None) -> None:
    with transaction.atomic():
        image.protected, image.protected_by, image.protected_reason = False, "", ""
        image.save(update_fields=["protected", "protected_by", "protected_reason"])
        audit.record(actor, "image.unprotected", at=now or clock.now(), **image_target(image))


def do_save_registry_settings(
    account: AwsAccount, *, actor: str, **values: Any
) -> RegistrySettings:
    unknown = set(values) - set(RegistrySettingsForm.Meta.fields)
    if unknown:
        raise ValueError(f"not a registry setting: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        row, _ = RegistrySettings.objects.get_or_create(account=account)
        for name, value in values.items():
            setattr(row, name, value)
        row.save(update_fields=list(values))
        audit.record(
            actor,
            "registry.cleanup_settings_changed",
            target_type="aws_account",
            target_id=account.account_id,
            target_label=account.name,
            account_id=account.account_id,
            details=values,
        )
    return row
