from typing import Any

from django.conf import settings
from django.http import HttpRequest

# (label, address, the permission its view requires). A section is listed only for users who
# may open it: a link that answers 403 is a dead end (tests/test_console.py opens every link
# as every role).
NAVIGATION = [
    ("Dashboard", "/", ""),
    ("Repositories", "/repositories/", "cleanup.view_repository"),
    ("Deletions", "/deletions/", "cleanup.view_deletioncheck"),
    ("Breakers", "/breakers/", "breaker.view_breaker"),
    ("Accounts", "/accounts/", "accounts.view_awsaccount"),
    ("Inbox", "/inbox/", "webhooks.view_inboundevent"),
    ("Audit", "/audit/", "audit.view_auditevent"),
    ("Users", "/users/", "auth.view_user"),
    ("Notifications", "/notifications/", "notify.view_channel"),
]


def navigation_for(request: HttpRequest) -> list[dict[str, Any]]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    path = request.path
    return [
        {
            "label": label,
            "href": href,
            "active": path == href if href == "/" else path.startswith(href),
        }
        for label, href, permission in NAVIGATION
        if not permission or user.has_perm(permission)
    ]


def console(request: HttpRequest) -> dict[str, Any]:
    return {"navigation": navigation_for(request), "sandbox": settings.SANDBOX}
