"""Apprise URLs: checked once where they come in (a form, ``NOTIFY_URLS``), and described without
their secret parts. Imported by the settings, so nothing here touches Django's models."""

from __future__ import annotations

import re

# An Apprise URL never holds white space; commas and semicolons can appear inside one (a mail
# URL's ``to=a@x,b@y``), so a list of them is separated by white space only.
_SEPARATOR = re.compile(r"\s+")
MAX_LENGTH = 2000


class InvalidUrl(ValueError):
    pass


def _plugin(url: str) -> object:
    import apprise

    # Apprise logs why it refuses a URL; the caller says it in its own words.
    with apprise.LogCapture(level=apprise.logging.CRITICAL):  # type: ignore[no-untyped-call]
        return apprise.Apprise.instantiate(url)


def check(url: str) -> str:
    """The URL, stripped, when Apprise knows its service and can parse it; else ``InvalidUrl``
    with a message that does not repeat the URL (it holds the channel's secret)."""
    url = url.strip()
    if not url:
        raise InvalidUrl("Give an Apprise URL, for example slack://..., json://host/path.")
    if len(url) > MAX_LENGTH:
        raise InvalidUrl(f"An Apprise URL is at most {MAX_LENGTH} characters.")
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise InvalidUrl("Not an Apprise URL: expected scheme://..., for example slack://...")
    if _plugin(url) is None:
        raise InvalidUrl(
            f"Apprise cannot use this {scheme}:// URL: the scheme is unknown or a part it needs "
            "(token, host, key) is missing or malformed."
        )
    return url


def parse_list(value: str) -> list[str]:
    """A white-space separated list of Apprise URLs (``NOTIFY_URLS``), each checked."""
    urls = [part for part in _SEPARATOR.split(value.strip()) if part]
    return [check(url) for url in urls]


def describe(url: str) -> str:
    """What a page may show of a saved URL: the service and the scheme, never the rest."""
    scheme = url.partition("://")[0].lower()
    try:
        plugin = _plugin(url)
    except Exception:  # a description must never fail a page
        plugin = None
    service = getattr(plugin, "service_name", None) or scheme
    return f"{service} ({scheme}://…)"
