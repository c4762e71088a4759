from typing import Any

from django.conf import settings
from django.http import HttpRequest

NAVIGATION = [
    ("Dashboard", "/"),
    ("Repositories", "/repositories/"),
    ("Deletions", "/deletions/"),
    ("Breakers", "/breakers/"),
    ("Accounts", "/accounts/"),
    ("Inbox", "/inbox/"),
    ("Audit", "/audit/"),
]


def console(request: HttpRequest) -> dict[str, Any]:
    path = request.path
    nav = [
        {
            "label": label,
            "href": href,
            "active": path == href if href == "/" else path.startswith(href),
        }
        for label, href in NAVIGATION
    ]
    return {"navigation": nav, "sandbox": settings.SANDBOX}
