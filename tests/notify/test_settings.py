"""NOTIFY_URLS and NOTIFY_BASE_URL: checked at start-up, never echoed back."""

from __future__ import annotations

import pytest

from notify import apprise_urls
from tests.test_settings import PRODUCTION, manage


def test_a_list_of_urls_is_split_on_white_space_and_each_checked():
    value = " json://127.0.0.1:9/a \n mailto://user:secret@example.com?to=a@x.com,b@x.com "

    assert apprise_urls.parse_list(value) == [
        "json://127.0.0.1:9/a",
        "mailto://user:secret@example.com?to=a@x.com,b@x.com",
    ]
    assert apprise_urls.parse_list("  ") == []


@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops", "Slack"),
        (
            "workflows://prod-00.westus.logic.azure.com:443/abcdef0123456789/?signature=abcd",
            "Power Automate / Workflows (for MSTeams)",
        ),
        ("mailtos://user:pass@mail.example.com?to=ops@example.com", "E-Mail"),
        ("pagerduty://integrationkey@apikey", "Pager Duty"),
        ("jsons://hooks.example.com/path", "JSON"),
    ],
)
def test_each_kind_of_channel_is_one_url_described_without_its_secret(url, service):
    assert apprise_urls.check(url) == url
    scheme = url.split("://")[0]
    assert apprise_urls.describe(url) == f"{service} ({scheme}://…)"


@pytest.mark.parametrize(
    "value", ["bogus://x", "slack://T1/", "no-scheme", "json://ok/ https://x/"]
)
def test_a_bad_url_is_refused(value):
    with pytest.raises(apprise_urls.InvalidUrl):
        apprise_urls.parse_list(value)


def test_a_bad_notify_url_stops_start_up_naming_the_setting_not_the_secret():
    result = manage("check", **PRODUCTION, NOTIFY_URLS="slack://Tsecret-token-part/")

    assert result.returncode != 0
    assert "NOTIFY_URLS" in result.stderr
    assert "Tsecret-token-part" not in result.stderr


def test_a_good_notify_url_starts():
    result = manage(
        "check",
        **PRODUCTION,
        NOTIFY_URLS="json://127.0.0.1:9/hook",
        NOTIFY_BASE_URL="https://c.example.com",
    )

    assert result.returncode == 0, result.stderr


def test_a_base_url_that_is_not_http_stops_start_up():
    result = manage("check", **PRODUCTION, NOTIFY_BASE_URL="console.example.com")

    assert result.returncode != 0
    assert "NOTIFY_BASE_URL" in result.stderr
