"""The cleanup app's tables: ECR as the console knows it (``inventory``), deletion checks and
their moves (``checks``), usage snapshots and the shared caches (``usage``)."""

from cleanup.models.archive import ImageRestore
from cleanup.models.checks import OPEN_STATUSES, DeletionCheck
from cleanup.models.inventory import (
    INDEX_MEDIA_TYPES,
    MIN_ARCHIVE_DAYS,
    CleanupAction,
    Image,
    ImageQuerySet,
    RegistrySettings,
    Repository,
    RepositoryQuerySet,
    StorageStatus,
    validate_archive_days,
)
from cleanup.models.jobs import BulkApproval
from cleanup.models.usage import FunctionVersionImage, TaskDefinitionImages, UsageSnapshot

__all__ = [
    "INDEX_MEDIA_TYPES",
    "MIN_ARCHIVE_DAYS",
    "OPEN_STATUSES",
    "BulkApproval",
    "CleanupAction",
    "DeletionCheck",
    "FunctionVersionImage",
    "Image",
    "ImageQuerySet",
    "ImageRestore",
    "RegistrySettings",
    "Repository",
    "RepositoryQuerySet",
    "StorageStatus",
    "TaskDefinitionImages",
    "UsageSnapshot",
    "validate_archive_days",
]
