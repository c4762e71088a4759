"""Words for the breaker's code names, for values that come without their model (annotations):
``{% load breakers %}`` then ``{{ breaker.last_to|state_words }}``, ``{{ cause|cause_words }}``."""

from django import template

from breaker.models import Breaker, BreakerTransition

register = template.Library()
STATE_WORDS = dict(Breaker.State.choices)
CAUSE_WORDS = dict(BreakerTransition.Cause.choices)


@register.filter
def state_words(code: str | None) -> str:
    return STATE_WORDS.get(code or "", code or "")


@register.filter
def cause_words(code: str | None) -> str:
    return CAUSE_WORDS.get(code or "", code or "")
