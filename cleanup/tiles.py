from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest

from cleanup.models import DeletionCheck, Image, Repository
from console import dashboard

GB = 1024**3


@dashboard.register
def cleanup_tile(request: HttpRequest) -> dashboard.Tile | None:
    if not request.user.has_perm("cleanup.view_deletioncheck"):
        return None
    awaiting = DeletionCheck.objects.filter(status=DeletionCheck.Status.AWAITING_APPROVAL)
    failed = DeletionCheck.objects.filter(status=DeletionCheck.Status.FAILED).count()
    reclaimable = awaiting.aggregate(total=Sum("image__size_bytes"))["total"] or 0
    reclaimed = Repository.objects.bytes_reclaimed()
    return dashboard.Tile(
        title="ECR cleanup",
        template="cleanup/tile.html",
        order=100,
        link="/deletions/",
        attention=failed > 0,
        context={
            "awaiting": awaiting.count(),
            "failed": failed,
            "reclaimable": reclaimable,
            "reclaimed": reclaimed,
            "saved_per_month": round(reclaimed / GB * settings.CLEANUP_PRICE_PER_GB_MONTH, 2),
            "images": Image.objects.present().count(),
        },
    )
