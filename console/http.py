from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxRequest(HttpRequest):
    """Typing shim: the middleware adds ``htmx``; logged-in views always have a user."""

    htmx: HtmxDetails
    user: AbstractBaseUser


def actor_of(request: HttpRequest) -> str:
    return request.user.get_username()
