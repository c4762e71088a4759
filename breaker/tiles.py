from django.http import HttpRequest

from breaker.models import Breaker
from console import dashboard


@dashboard.register
def breakers_tile(request: HttpRequest) -> dashboard.Tile | None:
    if not request.user.has_perm("breaker.view_breaker"):
        return None
    breakers = list(Breaker.objects.select_related("account").attention_first())
    troubled = [b for b in breakers if b.state != Breaker.State.CLOSED or b.broken]
    return dashboard.Tile(
        title="Circuit breakers",
        template="breaker/tile.html",
        order=200,
        link="/breakers/",
        attention=bool(troubled),
        context={"total": len(breakers), "troubled": troubled},
    )
