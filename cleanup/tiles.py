from django.db.models import Count, Q, Sum
from django.http import HttpRequest

from cleanup.models import DeletionCheck
from cleanup.savings import savings
from console import clock, dashboard


@dashboard.register
def cleanup_tile(request: HttpRequest) -> dashboard.Tile | None:
    if not request.user.has_perm("cleanup.view_deletioncheck"):
        return None
    figures = DeletionCheck.objects.filter(
        status__in=[DeletionCheck.Status.AWAITING_APPROVAL, DeletionCheck.Status.FAILED]
    ).aggregate(
        awaiting=Count("id", filter=Q(status=DeletionCheck.Status.AWAITING_APPROVAL)),
        failed=Count("id", filter=Q(status=DeletionCheck.Status.FAILED)),
        reclaimable=Sum(
            "image__size_bytes", filter=Q(status=DeletionCheck.Status.AWAITING_APPROVAL)
        ),
    )
    saved = savings(now=clock.now())
    return dashboard.Tile(
        title="ECR cleanup",
        template="cleanup/tile.html",
        order=100,
        link="/deletions/",
        attention=figures["failed"] > 0,
        context={
            "awaiting": figures["awaiting"],
            "failed": figures["failed"],
            "reclaimable": figures["reclaimable"] or 0,
            "reclaimed": saved.deleted_bytes,
            "archived": saved.archived_bytes,
            "saved_per_month": saved.saved_per_month,
        },
    )
