import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms

from cleanup.models import RegistrySettings, Repository

if TYPE_CHECKING:  # ModelForm is generic only in django-stubs, not at runtime
    RepositoryModelForm = forms.ModelForm[Repository]
    RegistrySettingsModelForm = forms.ModelForm[RegistrySettings]
else:
    RepositoryModelForm = RegistrySettingsModelForm = forms.ModelForm


class PolicyForm(RepositoryModelForm):
    grace_hours = forms.IntegerField(
        label="Grace period (hours)",
        required=False,
        min_value=0,
        max_value=24 * 366 * 10,  # ten years; more would overflow a timedelta
        help_text="Empty: the console's default.",
    )
    require_approval = forms.TypedChoiceField(
        label="Approval",
        choices=[("", "console default"), ("true", "required"), ("false", "not required")],
        coerce=lambda value: {"true": True, "false": False}.get(value),
        empty_value=None,
        required=False,
    )

    class Meta:
        model = Repository
        fields = ["keep_newest", "keep_tag_pattern"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        repository = self.instance
        if repository.grace_period is not None:
            self.initial["grace_hours"] = int(repository.grace_period.total_seconds() // 3600)
        if repository.require_approval is not None:
            self.initial["require_approval"] = "true" if repository.require_approval else "false"

    def clean_keep_tag_pattern(self) -> str:
        pattern: str = self.cleaned_data["keep_tag_pattern"]
        try:
            re.compile(pattern)
        except re.error as exc:
            raise forms.ValidationError(f"not a regular expression: {exc}") from None
        return pattern

    def changes(self) -> dict[str, Any]:
        hours = self.cleaned_data.get("grace_hours")
        return {
            "grace_period": None if hours is None else timedelta(hours=hours),
            "require_approval": self.cleaned_data.get("require_approval"),
            "keep_newest": self.cleaned_data["keep_newest"],
            "keep_tag_pattern": self.cleaned_data["keep_tag_pattern"],
        }


class RegistrySettingsForm(RegistrySettingsModelForm):
    class Meta:
        model = RegistrySettings
        fields = ["config_aggregator_name", "config_aggregator_region"]


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=True, strip=True)
