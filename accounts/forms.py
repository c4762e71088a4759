from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth.validators import ASCIIUsernameValidator

from accounts.models import AwsAccount, Organization
from accounts.roles import ROLE_CHOICES

if TYPE_CHECKING:
    # ModelForm is generic only in django-stubs; at run time it cannot be subscripted.
    AccountFormBase = forms.ModelForm[AwsAccount]
    OrganizationFormBase = forms.ModelForm[Organization]
else:
    AccountFormBase = forms.ModelForm
    OrganizationFormBase = forms.ModelForm


class RegionsField(forms.CharField):
    """Regions typed as ``eu-west-1, us-east-1``; validated by the model."""

    def prepare_value(self, value: list[str] | str | None) -> str | None:
        return ", ".join(value) if isinstance(value, list) else value

    # A CharField cleaning to a list, as Django's SimpleArrayField (typed the same way) does.
    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [region.strip() for region in text.split(",") if region.strip()]


class AccountForm(AccountFormBase):
    regions = RegionsField(help_text="Comma-separated, for example eu-west-1, us-east-1.")
    usage_regions = RegionsField(
        required=False,
        label="Usage regions",
        help_text="Where cleanup looks for images in use. Leave empty for every region enabled "
        "in the account (recommended); a list narrows it.",
    )

    class Meta:
        model = AwsAccount
        fields = [
            "account_id",
            "name",
            "environment",
            "role_arn",
            "external_id",
            "regions",
            "usage_regions",
            "is_registry",
        ]


class AccountEditForm(AccountForm):
    class Meta(AccountForm.Meta):
        fields = [
            "name",
            "environment",
            "role_arn",
            "external_id",
            "regions",
            "usage_regions",
            "is_registry",
            "enabled",
        ]


class IdListField(RegionsField):
    """Organizational unit or root ids, separated by commas, spaces or new lines; validated by
    the model."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = forms.CharField.to_python(self, value) or ""
        return [item for item in text.replace(",", " ").split() if item]


class OrganizationForm(OrganizationFormBase):
    """The organization's settings; the model's validators and ``clean`` are the rules (the CLI
    goes through the same ones in ``organizations.do_connect_organization``)."""

    include_ous = IdListField(
        required=False,
        label="Included units",
        help_text="Roots (r-...) or organizational units (ou-...-...), nested units included; "
        "empty for the whole organization.",
    )
    exclude_ous = IdListField(
        required=False,
        label="Excluded units",
        help_text="Organizational units (ou-...-...) left out with everything under them.",
    )
    regions = RegionsField(
        help_text="Home regions of the accounts it adds, comma-separated. Cleanup reads every "
        "region enabled in each account."
    )

    class Meta:
        model = Organization
        fields = [
            "role_arn",
            "external_id",
            "member_role_name",
            "member_external_id",
            "include_ous",
            "exclude_ous",
            "environment",
            "regions",
        ]


class InviteUserForm(forms.Form):
    """Who to invite. Taken names and addresses are refused by ``users.do_invite_user``."""

    username = forms.CharField(
        label="User name",
        max_length=150,
        validators=[ASCIIUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
    )
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
