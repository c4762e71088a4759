"""``manage.py qcluster`` runs two clusters: the main one and, as a child process, the alarm
cluster with a queue of its own. An alarm's task runs at once while every main worker is busy;
what an alarm task enqueues without naming a queue (a probe) goes to the main queue; an alarm
cluster that dies is started again. On both brokers (``broker``: the ORM, or Redis)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.processes import Console, own_database, wait_for

HEARTBEATS = "SELECT pid FROM console_workerheartbeat"
BUSY_SECONDS = 6  # how long the main cluster's one worker is kept busy

ENQUEUE = """
import json
from django.conf import settings
from django_q.tasks import async_task
# The main cluster's only worker: busy, then one more task waiting behind it.
async_task("time.sleep", {busy}, task_name="busy")
async_task("os.getpid", task_name="behind-the-busy-one")
# The alarm queue: an alarm task, which asks for more work without naming a queue (the only
# `console.clock.now` task here: django-q names it).
async_task(
    "django_q.tasks.async_task", "console.clock.now", cluster=settings.Q_ALARM_CLUSTER,
    task_name="alarm",
)
print(json.dumps(1))
"""
TASKS = "SELECT name, func, started, stopped FROM django_q_task"


def tasks(console: Console) -> dict[str, tuple]:
    """Done tasks by name; the follow-up (its name is django-q's) as ``follow-up``."""
    return {
        "follow-up" if func == "console.clock.now" else name: (started, stopped)
        for name, func, started, stopped in console.sql(TASKS)
    }


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent_of(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def descendants_of(pid: int) -> list[int]:
    children = children_of(pid)
    return children + [grandchild for child in children for grandchild in descendants_of(child)]


def test_alarms_run_while_the_main_cluster_is_busy_and_a_dead_alarm_cluster_comes_back(
    tmp_path, broker
):
    with own_database(tmp_path, "alarm_cluster") as database_url:
        console = Console(tmp_path, database_url, Q_WORKERS="1", **broker)
        console.manage("migrate", "--no-input")
        worker = console.start_worker()
        try:
            wait_for(
                "both clusters beat",
                lambda: len(console.sql(HEARTBEATS)) == 2,
                timeout=60,
                log=console.logs,
            )
            console.run(ENQUEUE.format(busy=BUSY_SECONDS))

            # The alarm task runs at once, though the main worker is busy for BUSY_SECONDS.
            done = wait_for("the alarm task done", lambda: tasks(console).get("alarm"), timeout=30)
            assert "busy" not in tasks(console), "the main worker was not busy: proves nothing"
            # Its follow-up went to the main queue: it runs after the busy task, with the one
            # that was waiting there, not in the idle alarm cluster.
            finished = wait_for(
                "the follow-up done in the main cluster",
                lambda: {"busy", "follow-up"} <= set(tasks(console)) and tasks(console),
                timeout=60,
            )
            # (django-q's ``started`` is when a task was enqueued; ``stopped``, when it ended.)
            assert finished["follow-up"][1] >= finished["busy"][1] > done[1]

            # The alarm cluster dies (every process of it): the qcluster starts it again.
            [alarm_cluster] = [
                pid
                for pid in children_of(worker.pid)
                if b"manage.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
                and pid not in {parent for (parent,) in console.sql(HEARTBEATS)}
            ]
            for pid in [alarm_cluster, *descendants_of(alarm_cluster)]:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(
                "a new alarm cluster beats",
                lambda: len(console.sql(HEARTBEATS)) == 3,
                timeout=60,
                log=console.logs,
            )
            console.run(
                "import json\nfrom django.conf import settings\n"
                "from django_q.tasks import async_task\n"
                "async_task('os.getpid', cluster=settings.Q_ALARM_CLUSTER,"
                " task_name='after-restart')\nprint(json.dumps(1))"
            )
            wait_for(
                "the new alarm cluster works",
                lambda: "after-restart" in tasks(console),
                timeout=30,
                log=console.logs,
            )
            back = time.monotonic() - killed
            assert worker.poll() is None, console.logs("worker")
        finally:
            returncode = console.stop("worker")
        assert returncode == 0, console.logs("worker")
        print(f"\nalarm cluster back and working {back:.1f} s after it was killed")
