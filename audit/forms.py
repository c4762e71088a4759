from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from audit.models import AuditEvent, AuditEventQuerySet


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=64)
    actor = forms.CharField(required=False, max_length=150)
    account = forms.RegexField(
        required=False,
        regex=r"^\d{12}$",
        error_messages={"invalid": "An account id has 12 digits."},
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            raise forms.ValidationError("The end date is before the start date.")
        return cleaned

    def events(self) -> AuditEventQuerySet:
        """The filtered events; ``until`` includes the whole day it names."""
        data: dict[str, Any] = self.cleaned_data if self.is_valid() else {}
        since, until = data.get("since"), data.get("until")
        return AuditEvent.objects.filtered(
            action=data.get("action", ""),
            actor=data.get("actor", ""),
            account_id=data.get("account", ""),
            since=_start_of(since) if since else None,
            until=_start_of(until + timedelta(days=1)) if until else None,
        )


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())
