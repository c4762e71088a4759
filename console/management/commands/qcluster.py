"""``manage.py qcluster``: the console's worker. One command runs two django-q clusters:

- the **main** cluster (``Q_CLUSTER``: ``Q_WORKERS`` workers, the scheduler): drains, checks,
  deletions, probes, sweeps; run in this process, after writing or repairing the schedules;
- the **alarm** cluster (``Q_CLUSTER["ALT_CLUSTERS"]``, queue ``console-alarms``,
  ``Q_ALARM_WORKERS`` workers, no scheduler): alarm state changes only, so a breaker decision is
  never queued behind other work. A child process, ``qcluster`` again with
  ``Q_CLUSTER_NAME=console-alarms`` (django-q reads its settings once, at import: one process
  cannot hold two clusters). This process starts it again if it dies, and stops it on SIGTERM
  or SIGINT; the child stops itself if this process is gone.

Run with ``Q_CLUSTER_NAME=console-alarms`` by hand, the command runs the alarm cluster alone
(a host given to alarms, say).

While the clusters run, this process hands on the inbox work a dead worker held, every
``WATCH_SECONDS`` (``webhooks.actions.do_resume_stalled``): on any worker host that survives, a
crashed host's events resume within a minute, without waiting for the minute schedule.

The console's app comes before ``django_q`` in ``INSTALLED_APPS``, so Django picks this command
over django-q's. A database restored from a backup, flushed, or migrated by a release whose
``post_migrate`` did not reach it, gets its schedules back when a worker starts.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django_q.brokers import get_broker
from django_q.cluster import Cluster
from django_q.conf import Conf
from django_q.management.commands import qcluster

from console import clock, schedules, worker

logger = logging.getLogger(__name__)

WATCH_SECONDS = 10.0
PARENT_ENV = "CONSOLE_ALARM_CLUSTER_PARENT"  # set for the alarm cluster the supervisor starts
RESTART_AFTER = 5.0  # seconds between two starts of a dying alarm cluster
STOP_TIMEOUT = 60.0


class Command(qcluster.Command):  # type: ignore[misc]  # django-q2 is untyped
    help = (
        "Starts the worker: the main django-q cluster (after writing the recurring schedules) "
        "and the alarm cluster beside it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        # Inherited by the processes the cluster forks: the time its heartbeats report.
        os.environ[worker.STARTED_AT_ENV] = clock.now().isoformat()
        if Conf.CLUSTER_NAME == settings.Q_ALARM_CLUSTER:
            self.run_alarm_cluster()
            return
        changed = schedules.sync()
        logger.info(
            "worker: %s schedules, %s created or repaired", len(schedules.registered()), changed
        )
        # The cluster forks; a database connection must not be shared with the children.
        connections.close_all()
        Supervisor(Cluster()).run()

    def run_alarm_cluster(self) -> None:
        """The alarm cluster, in this process. It works its own queue; anything its tasks
        enqueue without naming a queue (the probe an alarm leaving ALARM asks for) goes to the
        main cluster's, where long work belongs."""
        broker = get_broker(Conf.CLUSTER_NAME)
        Conf.CLUSTER_NAME = Conf.PREFIX
        connections.close_all()
        cluster = Cluster(broker)
        parent = os.environ.get(PARENT_ENV)
        cluster.start()
        logger.info("worker: alarm cluster %s started (queue %s)", cluster.name, broker.list_key)
        while cluster.sentinel.is_alive():
            if parent and str(os.getppid()) != parent:
                logger.warning("worker: the qcluster that started the alarm cluster is gone")
                cluster.stop()
                break
            time.sleep(1)


class Supervisor:
    """The main cluster in this process, the alarm cluster as a child, and the watch."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.alarms: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.last_start = 0.0
        # Replaces django-q's handlers (set by ``Cluster()``): the child is told first.
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)

    def on_signal(self, signum: int, frame: Any) -> None:
        logger.info("worker: %s, stopping both clusters", signal.Signals(signum).name)
        self.stopping.set()
        if self.alarms is not None and self.alarms.poll() is None:
            self.alarms.send_signal(signal.SIGTERM)
        self.cluster.stop()

    def start_alarms(self) -> None:
        self.last_start = time.monotonic()
        env = {
            **os.environ,
            "Q_CLUSTER_NAME": settings.Q_ALARM_CLUSTER,
            PARENT_ENV: str(os.getpid()),
        }
        manage = str(settings.BASE_DIR / "manage.py")
        self.alarms = subprocess.Popen([sys.executable, manage, "qcluster"], env=env)

    def run(self) -> None:
        self.cluster.start()
        self.start_alarms()
        watched = time.monotonic()
        try:
            while self.cluster.sentinel.is_alive() and not self.stopping.is_set():
                if self.alarms_died() and time.monotonic() - self.last_start >= RESTART_AFTER:
                    logger.error(
                        "worker: the alarm cluster exited (%s), starting it again",
                        self.alarms.returncode if self.alarms else None,
                    )
                    self.start_alarms()
                if time.monotonic() - watched >= WATCH_SECONDS:
                    watched = time.monotonic()
                    resume_stalled()
                self.stopping.wait(0.5)
        finally:
            self.stop_alarms()
        if not self.stopping.is_set():
            raise CommandError("the main cluster stopped by itself")

    def alarms_died(self) -> bool:
        return self.alarms is not None and self.alarms.poll() is not None

    def stop_alarms(self) -> None:
        if self.alarms is None or self.alarms.poll() is not None:
            return
        self.alarms.send_signal(signal.SIGTERM)
        try:
            self.alarms.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.alarms.kill()
            self.alarms.wait()


def resume_stalled() -> None:
    """``do_resume_stalled``; never stops the worker (the database may be away a moment)."""
    from webhooks import actions

    try:
        handed = actions.do_resume_stalled()
        if any(handed.values()):
            logger.info("worker: stalled inbox work handed on: %s", handed)
    except Exception:
        logger.exception("worker: the stalled inbox work was not looked at")
    finally:
        connections.close_all()
