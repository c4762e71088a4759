"""What the worker records about itself: a heartbeat per cluster, the last run of each schedule.

**Heartbeat.** django-q sends ``post_spawn`` in every worker process it starts, including the
ones it starts again after a crash, a timeout or a recycle. The receiver starts a daemon thread
there that writes the cluster's ``WorkerHeartbeat`` row at once and then every
``HEARTBEAT_INTERVAL``. The row is keyed by (host, the worker's parent pid): the parent is
django-q's sentinel, the process that guards the workers and runs the scheduler, so all workers
of one cluster beat one row, and two clusters on a host have a row each: every ``qcluster`` runs
two, the main cluster and the alarm cluster (console/management/commands/qcluster.py), so a
worker host shows two rows. Why this way:

- a thread, not a task: a task would wait behind a long probe or deletion in the queue, and a
  busy worker is alive; a thread beats while its worker runs a 15-minute probe;
- in the workers, not in the ``qcluster`` process: a beat then means a process that takes tasks
  exists; when every worker dies, the beats stop;
- the thread stops when its parent changes: if the sentinel is killed, its workers are orphaned
  (re-parented) and would otherwise beat forever for a cluster that schedules nothing;
- a worker whose main thread is wedged still beats; the schedules catch that: their last runs
  fall behind (``ScheduleRun``), which ``/healthz/worker`` also reports.

The time the cluster started comes from ``STARTED_AT_ENV``, set by the console's ``qcluster``
before it forks, so every worker of the cluster writes the same value, and a new cluster that
reuses an old (host, pid) pair (containers restart with the same pids) resets it.

**Schedule runs.** ``pre_execute`` is sent in the worker just before a task runs; the scheduler
names each task it creates after its schedule (the task's ``group``), so a registered name there
means "this schedule ran now". Neither receiver may break the worker: they log and carry on.

Nothing here runs in django-q's sync mode (tests): there ``worker()`` runs inside the caller.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.utils.dateparse import parse_datetime

from console import clock, schedules

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = timedelta(seconds=30)
# A cluster whose row has not been beaten for this long is gone; its row is pruned.
FORGET_AFTER = timedelta(days=1)
STARTED_AT_ENV = "CONSOLE_CLUSTER_STARTED_AT"


def beat(host: str, pid: int, started_at: datetime | None, now: datetime) -> None:
    """Upsert the cluster's row. Without a known start, a new row starts now and an existing
    one keeps its start."""
    from console.models import WorkerHeartbeat

    defaults: dict[str, Any] = {"last_beat": now}
    if started_at is not None:
        defaults["started_at"] = started_at
    WorkerHeartbeat.objects.update_or_create(
        host=host,
        pid=pid,
        defaults=defaults,
        create_defaults={"started_at": started_at or now, "last_beat": now},
    )


def forget_gone_clusters(now: datetime) -> int:
    from console.models import WorkerHeartbeat

    deleted, _ = WorkerHeartbeat.objects.filter(last_beat__lt=now - FORGET_AFTER).delete()
    return deleted


class Heartbeat(threading.Thread):
    def __init__(
        self,
        *,
        host: str,
        cluster_pid: int,
        started_at: datetime | None,
        interval: timedelta = HEARTBEAT_INTERVAL,
    ) -> None:
        super().__init__(name="console-heartbeat", daemon=True)
        self.host = host
        self.cluster_pid = cluster_pid
        self.started_at = started_at
        self.interval = interval
        self.stopped = threading.Event()

    def beat_once(self) -> bool:
        """One beat; False once the cluster this worker belonged to is gone."""
        if os.getppid() != self.cluster_pid:
            logger.warning("heartbeat: the cluster %s is gone, no more beats", self.cluster_pid)
            return False
        try:
            beat(self.host, self.cluster_pid, self.started_at, clock.now())
        except Exception:
            logger.exception("heartbeat: the beat was not written")
        finally:
            connections.close_all()  # this thread's own connections only
        return True

    def run(self) -> None:
        try:
            forget_gone_clusters(clock.now())
        except Exception:
            logger.exception("heartbeat: old rows not pruned")
        while self.beat_once() and not self.stopped.wait(self.interval.total_seconds()):
            pass


def start_heartbeat(sender: Any = None, proc_name: str = "", **kwargs: Any) -> Heartbeat | None:
    """``post_spawn`` receiver (in each new worker process)."""
    from django_q.conf import Conf

    if Conf.SYNC:
        return None
    started = os.environ.get(STARTED_AT_ENV)
    heartbeat = Heartbeat(
        host=socket.gethostname(),
        cluster_pid=os.getppid(),
        started_at=parse_datetime(started) if started else None,
    )
    heartbeat.start()
    return heartbeat


def record_schedule_run(
    sender: Any = None, task: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    """``pre_execute`` receiver: a task created by the scheduler carries its schedule's name."""
    name = (task or {}).get("group")
    if not isinstance(name, str) or schedules.get(name) is None:
        return
    try:
        schedules.record_run(name, clock.now())
    except Exception:
        logger.exception("schedule %s: its run was not recorded", name)
