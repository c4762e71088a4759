from django.core.exceptions import ValidationError
from django.db import models

from accounts.validators import (
    ROLE_ARN,
    validate_account_id,
    validate_environment,
    validate_external_id,
    validate_regions,
    validate_role_arn,
)


class AwsAccountQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)

    def registries(self):
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
    regions = models.JSONField(default=list, validators=[validate_regions])
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
        match = ROLE_ARN.match(self.role_arn or "")
        if match and self.account_id and match.group(2) != self.account_id:
            raise ValidationError(
                {
                    "role_arn": f"The role belongs to account {match.group(2)}, not to {self.account_id}."
                }
            )

    @property
    def verification_state(self) -> str:
        if self.last_verified_at is None:
            return "never"
        return "ok" if self.last_verification_ok else "failed"
