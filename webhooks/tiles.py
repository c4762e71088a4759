from datetime import timedelta

from django.db.models import Count, Q
from django.http import HttpRequest

from console import clock, dashboard
from webhooks.models import InboundEvent


@dashboard.register
def inbox_tile(request: HttpRequest) -> dashboard.Tile | None:
    if not request.user.has_perm("webhooks.view_inboundevent"):
        return None
    hour_ago = clock.now() - timedelta(hours=1)
    figures = InboundEvent.objects.aggregate(
        last_hour=Count("id", filter=Q(received_at__gte=hour_ago)),
        failed=Count("id", filter=Q(status=InboundEvent.Status.FAILED)),
        retrying=Count("id", filter=Q(status=InboundEvent.Status.RECEIVED, attempts__gt=0)),
    )
    return dashboard.Tile(
        title="Webhook inbox",
        template="webhooks/tile.html",
        order=800,
        link="/inbox/",
        attention=figures["failed"] > 0,
        context=figures,
    )
