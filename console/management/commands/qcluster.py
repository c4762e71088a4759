"""``manage.py qcluster``: django-q's worker, after writing or repairing the schedules.

The console's app comes before ``django_q`` in ``INSTALLED_APPS``, so Django picks this command
over django-q's. A database restored from a backup, flushed, or migrated by a release whose
``post_migrate`` did not reach it, gets its schedules back when a worker starts.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from django.db import connections
from django_q.management.commands import qcluster

from console import clock, schedules, worker

logger = logging.getLogger(__name__)


class Command(qcluster.Command):  # type: ignore[misc]  # django-q2 is untyped
    help = "Starts the worker (a django-q cluster) after writing the recurring schedules."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = schedules.sync()
        logger.info(
            "worker: %s schedules, %s created or repaired", len(schedules.registered()), changed
        )
        # Inherited by the processes the cluster forks: the time its heartbeats report.
        os.environ[worker.STARTED_AT_ENV] = clock.now().isoformat()
        # The cluster forks; a database connection must not be shared with the children.
        connections.close_all()
        super().handle(*args, **options)
