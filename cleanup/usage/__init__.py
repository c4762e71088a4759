"""Where images are used: references parsed in every host form (``references``), the usage
sources and their caches (``sources``), one snapshot of every source in every enabled account and
usage region (``snapshot``), and a repository as ECR describes it now (``state``).

Fail closed: a source that cannot answer is recorded as an error and the snapshot is incomplete;
a reference that names a registry but cannot be read makes that registry's images unjudgeable;
callers never read "no reference" from an incomplete snapshot as "unused".
Callers import from here: ``from cleanup import usage; usage.take_snapshot(...)``.
"""

from cleanup.usage.references import (
    CONFIG_EXPRESSION_LIMIT,
    SOURCE_APPRUNNER,
    SOURCE_BATCH,
    SOURCE_CONFIG,
    SOURCE_LAMBDA,
    SOURCE_NAMES,
    SOURCE_REGIONS,
    SOURCE_SERVICES,
    SOURCE_TASK_DEFINITIONS,
    SOURCE_TASKS,
    ImageRef,
    Reference,
    Unreadable,
    parse_image,
    unreadable_accounts,
)
from cleanup.usage.snapshot import Snapshot, SourceAnswer, take_snapshot
from cleanup.usage.sources import (
    ACCOUNT_SOURCES,
    SKIPPABLE_SOURCES,
    clear_caches,
    config_expressions,
    function_images,
    reference,
    task_definition_images,
)
from cleanup.usage.state import RepositoryState, references_to_image

__all__ = [
    "ACCOUNT_SOURCES",
    "CONFIG_EXPRESSION_LIMIT",
    "SKIPPABLE_SOURCES",
    "SOURCE_APPRUNNER",
    "SOURCE_BATCH",
    "SOURCE_CONFIG",
    "SOURCE_LAMBDA",
    "SOURCE_NAMES",
    "SOURCE_REGIONS",
    "SOURCE_SERVICES",
    "SOURCE_TASKS",
    "SOURCE_TASK_DEFINITIONS",
    "ImageRef",
    "Reference",
    "RepositoryState",
    "Snapshot",
    "SourceAnswer",
    "Unreadable",
    "clear_caches",
    "config_expressions",
    "function_images",
    "parse_image",
    "reference",
    "references_to_image",
    "take_snapshot",
    "task_definition_images",
    "unreadable_accounts",
]
