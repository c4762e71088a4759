"""The heartbeat thread a worker process starts (``console.worker``), run here in a thread of the
test process as it runs in a worker: the test process's parent stands for the cluster."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from console import worker
from console.models import WorkerHeartbeat

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=1)

# The thread writes through its own connection: rows must be committed to be seen.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clock(monkeypatch):
    moments = {"now": NOW}
    monkeypatch.setattr("console.clock.now", lambda: moments["now"])
    return moments


def in_a_thread(function) -> object:
    answer = {}
    thread = threading.Thread(target=lambda: answer.setdefault("value", function()))
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    return answer.get("value")


def heartbeat(cluster_pid: int | None = None, started_at=STARTED) -> worker.Heartbeat:
    return worker.Heartbeat(
        host="worker-1", cluster_pid=cluster_pid or os.getppid(), started_at=started_at
    )


def test_it_beats_one_row_for_the_cluster_and_moves_its_last_beat(clock):
    assert in_a_thread(heartbeat().beat_once) is True
    clock["now"] = NOW + timedelta(seconds=30)
    assert in_a_thread(heartbeat().beat_once) is True  # a second worker of the same cluster

    row = WorkerHeartbeat.objects.get()
    assert (row.host, row.pid) == ("worker-1", os.getppid())
    assert (row.started_at, row.last_beat) == (STARTED, NOW + timedelta(seconds=30))


def test_a_new_cluster_on_a_reused_pid_starts_afresh(clock):
    in_a_thread(heartbeat().beat_once)
    in_a_thread(heartbeat(started_at=NOW).beat_once)
    assert WorkerHeartbeat.objects.get().started_at == NOW


def test_it_stops_beating_once_its_cluster_is_gone(clock):
    """A worker whose sentinel died is re-parented: its parent is no longer the cluster."""
    orphan = heartbeat(cluster_pid=os.getppid() + 1)
    orphan.interval = timedelta(seconds=0)
    orphan.start()
    orphan.join(timeout=10)
    assert not orphan.is_alive()
    assert not WorkerHeartbeat.objects.exists()


def test_it_forgets_clusters_gone_for_a_day_when_a_worker_starts(clock):
    WorkerHeartbeat.objects.create(
        host="old", pid=1, started_at=NOW - timedelta(days=3), last_beat=NOW - timedelta(days=2)
    )
    live = heartbeat()
    live.stopped.set()  # one beat, then stop
    live.start()
    live.join(timeout=10)
    assert list(WorkerHeartbeat.objects.values_list("host", flat=True)) == ["worker-1"]


def test_no_thread_starts_in_django_qs_sync_mode():
    assert worker.start_heartbeat(proc_name="Process-1") is None
