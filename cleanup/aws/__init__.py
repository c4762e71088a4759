"""The only part of ``cleanup`` that talks to AWS: ECR in the registry accounts (``ecr``), and the
usage sources in every account (``workloads``: ECS, Lambda, AWS Batch, App Runner, AWS Config).
Returns small dataclasses; raises ``CleanupAwsError``; a missing resource is a normal answer
(``None`` or an empty list). Callers (and the tests' fake AWS) use this package's names:
``from cleanup import aws; aws.describe_images(...)``."""

from cleanup.aws.archive import ARCHIVE, STANDARD, image_status, update_image_storage_class
from cleanup.aws.common import (
    MAX_DELETE_BATCH,
    CleanupAwsError,
    DeleteOutcome,
    FunctionImage,
    FunctionSummary,
    ImageInfo,
    RepositoryInfo,
    ServiceInfo,
    TaskInfo,
)
from cleanup.aws.ecr import (
    batch_delete_images,
    describe_images,
    list_repositories,
    remove_repository_tag,
    replication_destinations,
    repository_tags,
    set_repository_tag,
)
from cleanup.aws.workloads import (
    describe_task_definition,
    function_image,
    list_active_task_definitions,
    list_apprunner_images,
    list_batch_images,
    list_clusters,
    list_image_functions,
    list_running_tasks,
    list_services,
    select_aggregate,
)

__all__ = [
    "ARCHIVE",
    "MAX_DELETE_BATCH",
    "STANDARD",
    "CleanupAwsError",
    "DeleteOutcome",
    "FunctionImage",
    "FunctionSummary",
    "ImageInfo",
    "RepositoryInfo",
    "ServiceInfo",
    "TaskInfo",
    "batch_delete_images",
    "describe_images",
    "describe_task_definition",
    "function_image",
    "image_status",
    "list_active_task_definitions",
    "list_apprunner_images",
    "list_batch_images",
    "list_clusters",
    "list_image_functions",
    "list_repositories",
    "list_running_tasks",
    "list_services",
    "remove_repository_tag",
    "replication_destinations",
    "repository_tags",
    "select_aggregate",
    "set_repository_tag",
    "update_image_storage_class",
]
