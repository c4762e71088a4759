from datetime import timedelta

from django.http import HttpRequest

from console import clock, dashboard
from webhooks.models import InboundEvent

COUNT_LIMIT = 10_000  # "10,000" is enough to say the inbox needs a look


@dashboard.register
def inbox_tile(request: HttpRequest) -> dashboard.Tile | None:
    if not request.user.has_perm("webhooks.view_inboundevent"):
        return None
    hour_ago = clock.now() - timedelta(hours=1)
    events = InboundEvent.objects.order_by()  # no ORDER BY inside a count
    # Three counts that each read an index (received_at; status), bounded, rather than one
    # aggregate that reads every event of the inbox.
    figures = {
        "last_hour": events.filter(received_at__gte=hour_ago)[:COUNT_LIMIT].count(),
        "failed": events.filter(status=InboundEvent.Status.FAILED)[:COUNT_LIMIT].count(),
        "retrying": events.filter(status=InboundEvent.Status.RECEIVED, attempts__gt=0)[
            :COUNT_LIMIT
        ].count(),
    }
    return dashboard.Tile(
        title="Webhook inbox",
        template="webhooks/tile.html",
        order=800,
        link="/inbox/",
        attention=figures["failed"] > 0,
        context=figures,
    )
