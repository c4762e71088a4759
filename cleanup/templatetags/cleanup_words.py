"""``{% load cleanup_words %}``: ``{{ code|source_words }}``, ``|status_words``,
``|trigger_words``, ``|outcome_words``, and ``|short_digest``."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.safestring import SafeString

from cleanup import words
from console.templatetags.console import when

register = template.Library()
register.filter("source_words", words.source)
register.filter("status_words", words.status)
register.filter("trigger_words", words.trigger)
register.filter("outcome_words", words.outcome)


@register.filter
def short_digest(digest: str | None) -> str:
    return (digest or "").removeprefix("sha256:")[:12]


@register.filter
def iso_when(value: str | None) -> SafeString | str:
    """A timestamp stored as ISO text (timelines, evidence), written as every page writes one."""
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return value or ""
    return when(moment)
