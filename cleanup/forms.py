import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms

from cleanup.models import MIN_ARCHIVE_DAYS, DeletionCheck, RegistrySettings, Repository

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

    # At least 90 for archive-then-delete: Repository.clean() (validate_archive_days, the rule
    # `manage.py cleanup set-action` applies too) decides, as the form validates its instance.
    archive_delete_after_days = forms.IntegerField(
        label="Delete after (days in the archive)",
        required=False,
        min_value=0,
        max_value=36_500,
        help_text=f"Archive-then-delete only; at least {MIN_ARCHIVE_DAYS} (ECR's minimum storage "
        "duration for archived images).",
    )

    class Meta:
        model = Repository
        fields = [
            "keep_newest",
            "keep_tag_pattern",
            "cleanup_action",
            "archive_delete_after_days",
            "auto_restore",
        ]
        labels = {"auto_restore": "Restore archived images used again by themselves"}

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
            "cleanup_action": self.cleaned_data["cleanup_action"],
            "archive_delete_after_days": self.cleaned_data.get("archive_delete_after_days"),
            "auto_restore": self.cleaned_data["auto_restore"],
        }


class RegistrySettingsForm(RegistrySettingsModelForm):
    class Meta:
        model = RegistrySettings
        fields = ["config_aggregator_name", "config_aggregator_region"]


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=True, strip=True)


QUEUE_TABS: dict[str, tuple[str, list[str]]] = {
    "awaiting_approval": ("Awaiting approval", ["awaiting_approval"]),
    "scheduled": ("Scheduled", ["scheduled", "running"]),
    "failed": ("Failed", ["failed"]),
    "approved": ("Approved, deleting", ["approved"]),
    "closed": ("Closed", ["deleted", "archived", "in_use", "rejected", "cancelled"]),
}
MB = 1024 * 1024


class QueueFilterForm(forms.Form):
    """The deletion queue's filters, from the query string. A field that does not validate is
    left out and named (``ignored``); the others still apply."""

    status = forms.CharField(label="Status", required=False, max_length=40)
    account = forms.RegexField(
        label="Registry account", regex=r"^[0-9]{12}$", required=False, max_length=12
    )
    repository = forms.IntegerField(label="Repository", required=False, min_value=1)
    min_mb = forms.DecimalField(
        label="Larger than (MB)", required=False, min_value=0, max_digits=12, decimal_places=3
    )
    older_days = forms.IntegerField(
        label="Pushed more than (days) ago", required=False, min_value=0, max_value=36500
    )
    trigger = forms.ChoiceField(
        choices=[("", "any trigger"), *DeletionCheck.Trigger.choices], required=False
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    # Filters of the rows (not the tab, not the page): what "approve all matching" takes.
    ROW_FILTERS = ("account", "repository", "min_mb", "older_days", "trigger")

    def clean_status(self) -> str:
        """A tab, or one status of a tab (links written before the tabs grouped them:
        ``?status=deleted`` opens "Closed")."""
        value: str = self.cleaned_data["status"]
        if not value or value in QUEUE_TABS:
            return value
        for key, (_, statuses) in QUEUE_TABS.items():
            if value in statuses:
                return key
        raise forms.ValidationError(f"{value!r} is not a tab of the queue.")

    def filters(self) -> dict[str, Any]:
        """The valid filters, as plain values (JSON for a bulk job), each only when given."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        values: dict[str, Any] = {}
        for name in self.ROW_FILTERS:
            value = cleaned.get(name)
            if value not in (None, ""):
                values[name] = float(value) if name == "min_mb" else value
        return values

    @property
    def tab(self) -> str:
        self.is_valid()
        return getattr(self, "cleaned_data", {}).get("status") or "awaiting_approval"

    @property
    def page_number(self) -> int:
        self.is_valid()
        return getattr(self, "cleaned_data", {}).get("page") or 1

    def ignored(self) -> list[str]:
        """``"Larger than (MB)": Enter a number.`` for each filter that was left out."""
        self.is_valid()
        return [
            f"{self.fields[name].label or name.title()} ignored: {' '.join(map(str, errors))}"
            for name, errors in self.errors.items()
            if name in self.fields
        ]
