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
    since = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    until = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def problems(self) -> list[tuple[str, str]]:
        """``(filter label, what is wrong)`` for every filter left out because it is invalid."""
        self.is_valid()
        return [
            (str(self.fields[name].label or name.capitalize()), str(error))
            for name, errors in self.errors.items()
            if name in self.fields
            for error in errors
        ]

    def events(self) -> AuditEventQuerySet:
        """The filtered events; ``until`` includes the whole day it names. A filter that is not
        valid is left out and the others still apply (``problems()`` says which)."""
        self.is_valid()
        data: dict[str, Any] = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        return AuditEvent.objects.filtered(
            action=data.get("action") or "",
            actor=data.get("actor") or "",
            account_id=data.get("account") or "",
            since=_start_of(since) if since else None,
            until=_start_of(until + timedelta(days=1)) if until else None,
        )


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())
