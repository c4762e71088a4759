"""The cleanup app's tables: ECR as the console knows it (``inventory``), deletion checks and
their moves (``checks``), usage snapshots and the shared caches (``usage``)."""

from cleanup.models.checks import OPEN_STATUSES, DeletionCheck
from cleanup.models.inventory import (
    INDEX_MEDIA_TYPES,
    Image,
    ImageQuerySet,
    RegistrySettings,
    Repository,
    RepositoryQuerySet,
)
from cleanup.models.usage import FunctionVersionImage, TaskDefinitionImages, UsageSnapshot

__all__ = [
    "INDEX_MEDIA_TYPES",
    "OPEN_STATUSES",
    "DeletionCheck",
    "FunctionVersionImage",
    "Image",
    "ImageQuerySet",
    "RegistrySettings",
    "Repository",
    "RepositoryQuerySet",
    "TaskDefinitionImages",
    "UsageSnapshot",
]
