from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import AwsAccount
from breaker.aws import Alarm, Mapping
from breaker.models import DEFAULT_RAMP_STEPS, Breaker, validate_name, validate_ramp_steps

if TYPE_CHECKING:
    # ModelForm is generic only in django-stubs; at run time it cannot be subscripted.
    BreakerFormBase = forms.ModelForm[Breaker]
else:
    BreakerFormBase = forms.ModelForm


class AlarmsField(forms.CharField):
    """Alarm ARNs or names, one a line (or comma-separated)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: list[str] | str | None) -> str | None:
        return "\n".join(value) if isinstance(value, list) else value

    # A CharField cleaning to a list, as Django's SimpleArrayField (typed the same way) does.
    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [
            alarm.strip()
            for line in text.splitlines()
            for alarm in line.split(",")
            if alarm.strip()
        ]


class RampStepsField(forms.CharField):
    """Maximum concurrency steps of a gradual close, written "2, 5, 20"."""

    def prepare_value(self, value: list[int] | str | None) -> str | None:
        return ", ".join(str(step) for step in value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[int]:  # type: ignore[override]
        text = super().to_python(value) or ""
        parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
        if not parts:  # left empty: the default ramp
            return list(DEFAULT_RAMP_STEPS)
        try:
            steps = [int(part) for part in parts]
        except ValueError:
            raise forms.ValidationError(
                "Write whole numbers separated by commas, for example 2, 5, 20."
            ) from None
        try:
            validate_ramp_steps(steps)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None
        return steps


class SettingsForm(BreakerFormBase):
    alarms: forms.Field = AlarmsField(
        help_text="Alarm ARNs or names in the breaker's account and region, one a line."
    )
    ramp_steps: forms.Field = RampStepsField(
        initial=", ".join(str(step) for step in DEFAULT_RAMP_STEPS),
        required=False,
        label="Ramp steps (maximum concurrency)",
        help_text="Used by a gradual close: 2 to 1000, rising; the mapping's own setting follows.",
    )

    ramp_step_seconds = forms.IntegerField(
        required=False,
        min_value=1,
        label="Quiet time at each step (s)",
        help_text="How long the alarm must stay out of ALARM at each step; empty: 300.",
    )

    class Meta:
        model = Breaker
        fields = [
            "alarms",
            "successes_to_close",
            "probe_interval_seconds",
            "backoff_seconds",
            "backoff_cap_seconds",
            "probe_visibility_timeout_seconds",
            "close_when_queue_empty",
            "gradual_close",
            "ramp_steps",
            "ramp_step_seconds",
        ]
        labels = {
            "gradual_close": "Close gradually",
            "ramp_step_seconds": "Quiet time at each step (s)",
            "probe_interval_seconds": "Probe interval (s)",
            "backoff_seconds": "Open back-off (s)",
            "backoff_cap_seconds": "Back-off cap (s)",
            "probe_visibility_timeout_seconds": "Probe visibility timeout (s)",
        }

    def clean_ramp_step_seconds(self) -> int:
        value = self.cleaned_data.get("ramp_step_seconds")
        return int(value) if value else int(Breaker._meta.get_field("ramp_step_seconds").default)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if not cleaned.get("alarms"):
            self.add_error("alarms", "Name at least one alarm.")
        base, cap = cleaned.get("backoff_seconds"), cleaned.get("backoff_cap_seconds")
        if base and cap and cap < base:
            self.add_error("backoff_cap_seconds", "The cap cannot be below the back-off.")
        return cleaned


class TargetForm(forms.Form):
    """Step one of adding: where to look. Changing either reloads the choices (htmx)."""

    account = forms.ModelChoiceField(
        queryset=AwsAccount.objects.enabled(), empty_label="Choose an account"
    )
    region = forms.CharField(max_length=32)


class AddBreakerForm(SettingsForm):
    """Step two: the mapping and alarms found in that account and region."""

    name = forms.CharField(max_length=100, validators=[validate_name])
    mapping = forms.ChoiceField(label="Function and queue", choices=())
    alarms = forms.MultipleChoiceField(
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Any of them in ALARM opens the breaker.",
    )

    class Meta(SettingsForm.Meta):
        fields = ["name", "mapping", *SettingsForm.Meta.fields]

    def __init__(
        self,
        *args: Any,
        mappings: Sequence[Mapping] = (),
        alarms: Sequence[Alarm] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.mappings = {mapping.uuid: mapping for mapping in mappings}
        cast(forms.ChoiceField, self.fields["mapping"]).choices = [
            (m.uuid, f"{m.function_name} ← {m.queue_name} ({m.state})") for m in mappings
        ]
        cast(forms.ChoiceField, self.fields["alarms"]).choices = [
            (a.arn, f"{a.name} ({a.state})") for a in alarms
        ]
        self.order_fields(["name", "mapping", "alarms"])
