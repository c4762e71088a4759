from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from accounts.validators import (
    ROLE_ARN,
    validate_account_id,
    validate_environment,
    validate_external_id,
    validate_regions,
    validate_role_arn,
    validate_usage_regions,
)


class AwsAccountQuerySet(models.QuerySet["AwsAccount"]):
    def enabled(self) -> AwsAccountQuerySet:
        return self.filter(enabled=True)

    def registries(self) -> AwsAccountQuerySet:
        return self.enabled().filter(is_registry=True)


class AwsAccount(models.Model):
    account_id = models.CharField(
        "account id", max_length=12, unique=True, validators=[validate_account_id]
    )
    name = models.CharField(max_length=100)
    environment = models.CharField(max_length=32, default="prod", validators=[validate_environment])
    role_arn = models.CharField(
        "role ARN",
        max_length=600,
        blank=True,
        validators=[validate_role_arn],
        help_text="Role the console assumes in this account; empty means the console's own credentials.",
    )
    external_id = models.CharField(max_length=1224, blank=True, validators=[validate_external_id])
    regions = models.JSONField(
        default=list,
        validators=[validate_regions],
        help_text="Where the console works in this account: ECR repositories of a registry, "
        "breakers, and the account's own API calls.",
    )
    usage_regions = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_usage_regions],
        help_text="Where cleanup looks for images in use. Empty: every region enabled in the "
        "account (discovered daily). A list narrows it, and every check's evidence says so.",
    )
    discovered_regions = models.JSONField(default=list, blank=True, editable=False)
    regions_discovered_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_registry = models.BooleanField("holds ECR repositories", default=False)
    enabled = models.BooleanField(default=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    last_verification_ok = models.BooleanField(null=True, blank=True)
    last_verification_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AwsAccountQuerySet.as_manager()

    class Meta:
        ordering = ["name", "account_id"]
        permissions = [("verify_awsaccount", "Can verify access to an AWS account")]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})"

    def clean(self) -> None:
        match = ROLE_ARN.fullmatch(self.role_arn or "")
        if match and self.account_id and match.group(2) != self.account_id:
            raise ValidationError(
                {
                    "role_arn": f"The role belongs to account {match.group(2)}, not to {self.account_id}."
                }
            )

    @property
    def usage_narrowed(self) -> bool:
        return bool(self.usage_regions)

    @property
    def usage_scope(self) -> str:
        """Where usage is read, in words, as the account page and every check's evidence say it."""
        if self.usage_regions:
            return f"usage read in {', '.join(self.usage_regions)} only (narrowed by an operator)"
        if self.discovered_regions:
            return (
                f"usage read in every enabled region ({len(self.discovered_regions)}, "
                f"discovered {self.regions_discovered_at:%Y-%m-%d %H:%M} UTC)"
            )
        return "usage read in every enabled region (not discovered yet)"

    @property
    def verification_state(self) -> str:
        if self.last_verified_at is None:
            return "never"
        return "ok" if self.last_verification_ok else "failed"
