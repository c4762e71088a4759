"""The repository page's archived images: restore one (operators), and the row that polls its
restore until ECR says ACTIVE (or it failed). A request makes one AWS call at most."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from cleanup import savings
from cleanup.actions import archive
from cleanup.models import Image, ImageRestore, Repository, StorageStatus
from console import clock
from console.http import HtmxRequest, actor_of, htmx_partial

SHOWN = 200  # archived images listed on the repository page


def archive_section_context(repository: Repository) -> dict[str, Any]:
    """What ``cleanup/archived.html`` shows for a repository: images archived or being restored,
    each with its latest restore, and the savings figures."""
    images = list(
        Image.objects.present()
        .filter(repository=repository)
        .exclude(storage_status=StorageStatus.ACTIVE)
        .order_by("-archived_at", "digest")[:SHOWN]
    )
    recent = list(
        ImageRestore.objects.filter(image__repository=repository).order_by("-requested_at", "-id")[
            :SHOWN
        ]
    )
    for image in images:
        image.latest_restore = next((r for r in recent if r.image_id == image.pk), None)
    restored = [r for r in recent if r.is_final and r.image_id not in {i.pk for i in images}]
    figures = savings.savings(Repository.objects.filter(pk=repository.pk), now=clock.now())
    return {
        "repository": repository,
        "archived": images,
        "recent_restores": restored[:10],
        "savings": figures,
    }


def _row(request: HtmxRequest, image: Image, restore: ImageRestore | None) -> HttpResponse:
    image.latest_restore = restore
    response = render(request, "cleanup/archived.html#row", {"image": image})
    watching = restore is not None and not restore.is_final
    return response if watching else HttpResponseStopPolling(response.content)


def _image(pk: int) -> Image:
    return get_object_or_404(Image.objects.select_related("repository__account"), pk=pk)


@require_POST
@permission_required("cleanup.restore_image", raise_exception=True)
def image_restore(request: HtmxRequest, pk: int) -> HttpResponse:
    image = _image(pk)
    reason = request.POST.get("reason", "").strip()[:500] or "restored from the console"
    restore = None
    try:
        restore = archive.do_restore_image(image, actor=actor_of(request), reason=reason)
    except archive.RestoreRefused as exc:
        messages.error(request, f"Not restored: {exc}")
    else:
        if restore.status == ImageRestore.Status.FAILED:
            messages.error(request, f"ECR refused the restore of {image.label}: {restore.error}")
        else:
            messages.success(request, f"Restore of {image.label} asked of ECR.")
    if htmx_partial(request):
        image.refresh_from_db()
        return _row(request, image, restore or image.restores.first())
    return redirect("cleanup:repository", pk=image.repository_id)


@require_GET
@permission_required("cleanup.view_image", raise_exception=True)
def image_restore_state(request: HtmxRequest, pk: int) -> HttpResponse:
    """The row of an archived image; while a restore is under way, ECR is asked again (at most
    one call, at most every ``archive.POLL_AWS_EVERY``), and polling stops once it is final."""
    image = _image(pk)
    restore = image.restores.first()
    if restore is not None and not restore.is_final:
        restore = archive.do_poll_restore(restore)
        image.refresh_from_db()
    if not htmx_partial(request):
        return redirect("cleanup:repository", pk=image.repository_id)
    return _row(request, image, restore)
