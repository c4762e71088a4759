"""The console as real processes, for the tests that need them: ``manage.py`` commands, the web
server and the worker, each a subprocess on a database of its own.

The test database of pytest-django is in-memory SQLite by default, which no other process can
open, so these tests make their own: a SQLite file in the test's temporary directory, or, when
``DATABASE_URL`` names PostgreSQL (CI), a database beside it with a name of this run's own,
dropped afterwards. The subprocesses read a settings module written next to the database: the
production settings with what plain-HTTP tests need (cookies without ``Secure``, static files
without a manifest).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests

from scenarios import moto_server

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

SETTINGS = """
from console.settings import *  # noqa: F403

STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
"""

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    what: str, check: Callable[[], T], *, timeout: float, every: float = 0.5, log: Any = None
) -> T:
    """Poll ``check`` until it answers something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    details = f"\nlast answer: {last!r}"
    if log is not None:
        details += "\n" + log()
    raise AssertionError(f"{what}: not within {timeout:.0f} s{details}")


@contextmanager
def own_database(tmp_path: Path, purpose: str) -> Iterator[str]:
    """A fresh, empty database URL for this test alone."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / f'{purpose}.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/')}_{purpose}_{uuid.uuid4().hex[:8]}"[:63]
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Console:
    """``manage.py`` and long-running processes on one database, with one environment."""

    def __init__(self, tmp_path: Path, database_url: str, **env: str) -> None:
        self.dir = tmp_path
        (tmp_path / "process_settings.py").write_text(SETTINGS)
        passed = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "DJANGO_", "CLEANUP_", "Q_", "WEBHOOK_"))
        }
        self.env = {
            **passed,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "process_settings",
            "DATABASE_URL": database_url,
            "DEBUG": "false",
            "SECRET_KEY": "processes-" + uuid.uuid4().hex * 2,
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "Q_WORKERS": "2",
            # Nothing here may reach a real AWS: a closed port unless a test names moto's server.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            **env,
        }
        self.processes: dict[str, subprocess.Popen] = {}

    def manage(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, (
            f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    def run(self, script: str) -> Any:
        """Run Python in ``manage.py shell``; the script ends by printing one JSON value."""
        return json.loads(self.manage("shell", stdin=script).strip().splitlines()[-1])

    def sql(self, statement: str) -> list[tuple]:
        """One statement on the database, committed: quicker than ``manage.py shell`` to poll."""
        url = self.env["DATABASE_URL"]
        if url.startswith("sqlite:///"):
            import sqlite3

            with closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=20)) as db:
                rows = db.execute(statement).fetchall()
                db.commit()
                return rows
        import psycopg

        with psycopg.connect(url) as db:
            cursor = db.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = (self.dir / f"{name}.log").open("w")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with all its children
        )
        self.processes[name] = process
        return process

    def start_worker(self) -> subprocess.Popen:
        return self.start("worker", PYTHON, "manage.py", "qcluster")

    def start_web(self) -> str:
        port = free_port()
        gunicorn = str(Path(PYTHON).parent / "gunicorn")
        self.start("web", gunicorn, "console.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2")
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if self.processes["web"].poll() is not None:
                raise AssertionError(f"the web server exited:\n{self.logs('web')}")
            try:
                return requests.get(f"{url}/healthz", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):
                # Not answering yet: the socket is bound before the workers have loaded Django,
                # which takes seconds on a busy machine.
                return False

        wait_for("the web server answers /healthz", answers, timeout=30, every=0.2)
        return url

    def stop(self, name: str, timeout: float = 30) -> int:
        """SIGTERM to the process (qcluster stops its cluster and waits for it); then, only if
        it does not end in time, SIGKILL to its whole group."""
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise AssertionError(f"{name} did not stop within {timeout} s") from None
        with suppress(ProcessLookupError):  # children left behind, if any
            os.killpg(process.pid, signal.SIGKILL)
        return process.returncode

    def stop_all(self) -> None:
        for name in list(self.processes):
            with suppress(AssertionError):
                self.stop(name)

    def logs(self, *names: str) -> str:
        names = names or tuple(self.processes)
        return "\n".join(
            f"--- {name}.log (end) ---\n{(self.dir / f'{name}.log').read_text()[-6000:]}"
            for name in names
            if (self.dir / f"{name}.log").exists()
        )


@contextmanager
def moto_in_this_process() -> Iterator[str]:
    """moto's server on a free port, in a thread of the test's own process (so the test can
    patch its backends with ``scenarios.moto_patches``), Lambda answering without Docker; yields
    its URL for ``AWS_ENDPOINT_URL``."""
    with moto_server.in_this_process() as url:
        yield url


class RedisServer:
    """``redis-server`` on a free loopback port, nothing persisted: the Redis broker of the tests
    that run the worker on it (``Q_REDIS_URL``)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = directory / "redis.log"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(directory),
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def wait_until_ready(self) -> None:
        import redis

        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited:\n{self.log.read_text()}")
            try:
                return bool(self.client().ping())
            except redis.ConnectionError:
                return False

        wait_for("redis-server answers PING", answers, timeout=10, every=0.05)

    def flush(self) -> None:
        """Empty it: no task or statistic of one test reaches the workers of the next."""
        self.client().flushall()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


BROKERS = ["orm", "redis"]


@contextmanager
def broker_env(broker: str, redis: RedisServer | None) -> Iterator[dict[str, str]]:
    """The environment that puts a console's worker on ``broker``: nothing for the ORM broker
    (the default), ``Q_REDIS_URL`` for Redis, emptied before and after the test."""
    if broker == "orm":
        yield {}
        return
    assert redis is not None, "the redis broker needs a RedisServer"
    redis.flush()
    try:
        yield {"Q_REDIS_URL": redis.url}
    finally:
        redis.flush()


def sign_in(web: str, username: str = "oscar") -> requests.Session:
    """A session signed in through the real login form of the web server at ``web``."""
    from tests.conftest import PASSWORD

    browser = requests.Session()
    form = browser.get(f"{web}/login/", timeout=10).text
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert found, form[:500]
    answer = browser.post(
        f"{web}/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": found.group(1)},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return browser
