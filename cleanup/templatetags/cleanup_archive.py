"""``{% archived_images repository %}``: the repository page's section of archived images (with
their restores) and what archiving saves, rendered from ``cleanup/archived.html``."""

from __future__ import annotations

from typing import Any

from django import template

from cleanup.archive_views import archive_section_context
from cleanup.models import Repository

register = template.Library()


@register.inclusion_tag("cleanup/archived.html", takes_context=True)
def archived_images(context: template.Context, repository: Repository) -> dict[str, Any]:
    return {"perms": context.get("perms"), **archive_section_context(repository)}
