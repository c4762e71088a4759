"""The one place Apprise sends: a notification to one URL, answered with the error or None.
Apprise does not raise on a failed send; it logs why, which is what the channel's page shows."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def send(url: str, *, title: str, body: str, failure: bool) -> str | None:
    import apprise

    app = apprise.Apprise()
    capture = apprise.LogCapture(level=apprise.logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
    with capture as log:
        added = app.add(url)
        ok = added and bool(
            app.notify(
                title=title,
                body=body,
                notify_type=apprise.NotifyType.FAILURE if failure else apprise.NotifyType.INFO,
            )
        )
        said = log.getvalue().strip()
    if ok:
        return None
    if not added:
        return "Apprise cannot use the channel's URL"
    return said or "the service did not accept the notification"
