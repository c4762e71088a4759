from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import AwsAccount
from notify import apprise_urls
from notify.events import EVENT_CHOICES
from notify.models import Channel


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        label="Apprise URL",
        max_length=apprise_urls.MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="One URL per channel, for example slack://TokenA/TokenB/TokenC/#ops, "
        "workflows://... (Microsoft Teams through Power Automate), mailtos://user:password@mail.example.com?to=ops@example.com, "
        "pagerduty://IntegrationKey@ApiKey, json://host:port/path. Kept secret: never shown again.",
    )
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, label="Events"
    )
    all_accounts = forms.BooleanField(required=False, initial=True, label="Every account")
    accounts = forms.ModelMultipleChoiceField(
        queryset=AwsAccount.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Used when 'Every account' is off. Events about no account (the worker, the "
        "digest's total) reach the channel either way.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, channel: Channel | None = None, **kwargs: Any) -> None:
        if channel is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": channel.name,
                    "events": channel.events,
                    "all_accounts": channel.all_accounts,
                    "accounts": list(channel.accounts.all()),
                    "enabled": channel.enabled,
                },
            )
        super().__init__(*args, **kwargs)
        if channel is not None:
            self.fields["url"].required = False
            self.fields[
                "url"
            ].help_text = (
                f"Saved: {channel.url_hint}. Leave empty to keep it; a new URL replaces it."
            )

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        if not url.strip():
            return ""
        try:
            return apprise_urls.check(url)
        except apprise_urls.InvalidUrl as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("all_accounts") and not data.get("accounts"):
            self.add_error("accounts", "Choose the accounts, or 'Every account'.")
        return data
