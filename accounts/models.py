from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from accounts.validators import (
    ROLE_ARN,
    validate_account_id,
    validate_environment,
    validate_excluded_units,
    validate_external_id,
    validate_included_parents,
    validate_regions,
    validate_role_arn,
    validate_role_name,
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

    @property
    def member(self) -> OrganizationMember | None:
        """The account's place in the connected organization, or None when registered by hand."""
        try:
            return self.membership
        except OrganizationMember.DoesNotExist:
            return None

    @property
    def origin(self) -> str:
        return "organization" if self.member is not None else "hand"


# The API's partition -> the region its Organizations endpoint lives in (a global service).
ORGANIZATIONS_REGION = {
    "aws": "us-east-1",
    "aws-cn": "cn-northwest-1",
    "aws-us-gov": "us-gov-west-1",
}


class Organization(models.Model):
    """The AWS Organization the console follows: at most one, connected by an admin. A recurring
    pass (``accounts.organizations``) registers its accounts and marks the ones that left."""

    ONE = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ONE, editable=False)
    role_arn = models.CharField(
        "organizations role ARN",
        max_length=600,
        validators=[validate_role_arn],
        help_text="A role in the management account or a delegated administrator that may list "
        "the organization's accounts (organization-account.yaml creates it).",
    )
    external_id = models.CharField(
        max_length=1224,
        blank=True,
        validators=[validate_external_id],
        help_text="External id of the organizations role, if its trust policy asks for one.",
    )
    member_role_name = models.CharField(
        "role name in every account",
        max_length=64,
        default="platform-console",
        validators=[validate_role_name],
        help_text="The role the workload StackSet creates in every account (its RoleName).",
    )
    member_external_id = models.CharField(
        "external id in every account",
        max_length=1224,
        blank=True,
        validators=[validate_external_id],
        help_text="The StackSet's ExternalId parameter.",
    )
    include_ous = models.JSONField(
        "included units",
        default=list,
        blank=True,
        validators=[validate_included_parents],
        help_text="Roots or organizational units whose accounts (nested units included) the "
        "console follows; empty for the whole organization.",
    )
    exclude_ous = models.JSONField(
        "excluded units",
        default=list,
        blank=True,
        validators=[validate_excluded_units],
        help_text="Organizational units left out, with everything under them.",
    )
    environment = models.CharField(
        max_length=32,
        default="workload",
        validators=[validate_environment],
        help_text="Environment label of the accounts it adds (each can be edited afterwards).",
    )
    regions = models.JSONField(
        default=list,
        validators=[validate_regions],
        help_text="Home regions of the accounts it adds (where breakers run and API calls go). "
        "Cleanup reads what runs in every region enabled in each account.",
    )
    connected_at = models.DateTimeField()
    connected_by = models.CharField(max_length=150)
    last_read_at = models.DateTimeField(null=True, blank=True)
    last_read_ok = models.BooleanField(null=True, blank=True)
    last_read_error = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_summary = models.JSONField(default=dict, blank=True)
    sync_lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="one_organization")]

    def __str__(self) -> str:
        return f"organization read through {self.role_arn}"

    def clean(self) -> None:
        both = sorted(set(self.include_ous or []) & set(self.exclude_ous or []))
        if both:
            raise ValidationError(
                {"exclude_ous": f"Both included and excluded: {', '.join(both)}."}
            )

    @property
    def partition(self) -> str:
        match = ROLE_ARN.fullmatch(self.role_arn or "")
        return match.group(1) if match else "aws"

    @property
    def management_account_id(self) -> str:
        """The account the organizations role lives in (management or delegated admin)."""
        match = ROLE_ARN.fullmatch(self.role_arn or "")
        return match.group(2) if match else ""

    @property
    def api_region(self) -> str:
        return ORGANIZATIONS_REGION.get(self.partition, "us-east-1")

    def member_role_arn(self, account_id: str) -> str:
        return f"arn:{self.partition}:iam::{account_id}:role/{self.member_role_name}"

    @property
    def read_state(self) -> str:
        if self.last_read_at is None:
            return "never"
        return "ok" if self.last_read_ok else "failed"


class OrganizationMember(models.Model):
    """An account the organization pass registered, and where it stands in the organization."""

    class State(models.TextChoices):
        PENDING = "pending", "waiting for its role"
        ACTIVE = "active", "member"
        GONE = "gone", "gone"

    account = models.OneToOneField(
        AwsAccount, on_delete=models.CASCADE, primary_key=True, related_name="membership"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    org_state = models.CharField(
        "state in the organization", max_length=32, blank=True, help_text="As last read."
    )
    parent_id = models.CharField("parent", max_length=70, blank=True)
    first_seen_at = models.DateTimeField()
    verify_failures = models.PositiveIntegerField(default=0)
    next_verify_at = models.DateTimeField(null=True, blank=True)
    gone_at = models.DateTimeField(null=True, blank=True)
    gone_reason = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id} ({self.state})"

    def may_verify(self, now: datetime) -> bool:
        """A pending account is verified at once, then again after a back-off (its role may not be
        there yet: the StackSet reaches new accounts within minutes, or never)."""
        return self.state == self.State.PENDING and (
            self.next_verify_at is None or self.next_verify_at <= now
        )
