from django import template

from webhooks import notes

register = template.Library()


@register.filter
def in_words(note: str | None) -> str:
    """``{{ event.note|in_words }}``: a handler's technical note as a sentence."""
    return notes.in_words(note or "")
