from django import forms

from accounts.models import AwsAccount


class RegionsField(forms.CharField):
    """Regions typed as ``eu-west-1, us-east-1``; validated by the model."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value)
        return [region.strip() for region in text.split(",") if region.strip()]


class AccountForm(forms.ModelForm):
    regions = RegionsField(help_text="Comma-separated, for example eu-west-1, us-east-1.")

    class Meta:
        model = AwsAccount
        fields = [
            "account_id",
            "name",
            "environment",
            "role_arn",
            "external_id",
            "regions",
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
            "is_registry",
            "enabled",
        ]
