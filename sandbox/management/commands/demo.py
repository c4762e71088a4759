"""``make demo``: the console, its worker and a sandbox AWS on this machine, until Ctrl-C.

Steps: a fresh SQLite database (``<data dir>/demo.sqlite3``, removed at every start: moto's server
starts empty too, so both begin in step), moto's server on a free loopback port, ``migrate``,
``sandbox_seed`` (the demo data of every feature, and the demo admin), then ``runserver`` and one
``qcluster`` until Ctrl-C. Every child runs in its own process group with the demo environment
(``AWS_ENDPOINT_URL`` pointing at moto, ``CONSOLE_SANDBOX=true``, ``DEBUG=true``); this process
never opens the database itself. Ctrl-C or SIGTERM stops all of them; if one of them dies, the
others are stopped and the command exits non-zero.

Run it with ``DEBUG=true`` (the Makefile does): without it the settings want a SECRET_KEY.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scenarios import moto_server

STARTUP_TIMEOUT = 60.0  # seconds for a server to answer
STOP_TIMEOUT = 10.0  # seconds for the children to stop before they are killed
# Inherited variables that would point the children somewhere else than the sandbox.
NOT_INHERITED = {
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "Q_REDIS_URL",
}


class Stop(Exception):
    """Ctrl-C or SIGTERM."""


def _stop(signum: int, frame: object) -> None:
    raise Stop


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (a loopback URL built here)
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer: the server is up
    except OSError:
        return False


def demo_environment(aws_url: str, database: Path, webhook_api_key: str) -> dict[str, str]:
    """The children's environment: this one, pointed at the sandbox and the demo database."""
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(
        AWS_ENDPOINT_URL=aws_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="eu-west-1",
        AWS_DEFAULT_REGION="eu-west-1",
        CONSOLE_SANDBOX="true",
        DEBUG="true",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL=f"sqlite:///{database}",
        WEBHOOK_API_KEYS=webhook_api_key,
        PYTHONUNBUFFERED="1",
        # A deregistered image waits a minute, not a day, so the demo shows the whole flow; the
        # sandbox (moto) has no App Runner, which would fail every check closed.
        CLEANUP_GRACE_PERIOD=os.environ.get("CLEANUP_GRACE_PERIOD", "1m"),
        CLEANUP_SKIP_SOURCES="apprunner_services",
    )
    return env


class Command(BaseCommand):
    help = "Run the console against a sandbox AWS (moto) with one worker, until Ctrl-C."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("DEMO_PORT") or 8000),
            help="web port (DEMO_PORT)",
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=Path(os.environ.get("DEMO_DATA_DIR") or settings.DATA_DIR),
            help="where demo.sqlite3 goes (DEMO_DATA_DIR, default: data/)",
        )

    def handle(self, *args, port: int, data_dir: Path, **options) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        for signum in handlers:
            signal.signal(signum, _stop)
        try:
            self.run_demo(port, data_dir.resolve())
        except Stop:
            self.say("\nStopping the demo...")
        finally:
            self.stop_children()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        self.say("Demo stopped.")

    def run_demo(self, port: int, data_dir: Path) -> None:
        if not port_is_free(port):
            raise CommandError(f"port {port} is in use; choose another with DEMO_PORT=...")
        data_dir.mkdir(parents=True, exist_ok=True)
        database = data_dir / "demo.sqlite3"
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
        aws_port = free_port()
        aws_url = f"http://127.0.0.1:{aws_port}"
        web_url = f"http://127.0.0.1:{port}/"
        api_key = secrets.token_urlsafe(24)
        password = secrets.token_urlsafe(12)
        env = demo_environment(aws_url, database, api_key)
        # The notifications channel the seed adds posts to the console's own sandbox sink.
        env["DEMO_NOTIFY_SINK"] = f"json://127.0.0.1:{port}/sandbox/notify/sink/"
        env.setdefault("NOTIFY_BASE_URL", web_url.rstrip("/"))
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]

        self.say(f"Fresh demo database: {database}")
        moto = self.start(
            "sandbox AWS",
            # moto's server, with ECR's archival storage class (sandbox.moto_server)
            [sys.executable, "-m", "sandbox.moto_server", "-H", "127.0.0.1", "-p", str(aws_port)],
            env,
        )
        self.wait_until_answers("sandbox AWS", f"{aws_url}/moto-api/", moto)
        moto_server.configure(aws_url)  # Lambda answers without Docker
        self.step([*manage, "migrate", "--no-input", "--verbosity", "0"], env)
        self.step(
            [*manage, "sandbox_seed", "--admin-password-env", "DEMO_ADMIN_PASSWORD"],
            {**env, "DEMO_ADMIN_PASSWORD": password},
        )
        web = self.start(
            "web server", [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env
        )
        worker = self.start("worker", [*manage, "qcluster"], env)
        self.wait_until_answers("web server", f"{web_url}healthz", web)

        self.say(
            "\nThe console runs against a sandbox AWS. Press Ctrl-C to stop everything.\n"
            f"  web console      {web_url}  (runserver, pid {web.pid})\n"
            f"  worker           manage.py qcluster  (pid {worker.pid})\n"
            f"  sandbox AWS      {aws_url}  (moto server, pid {moto.pid})\n"
            f"  database         {database}  (fresh each run)\n"
            f"  webhook API key  {api_key}  (X-Api-Key for POST {web_url}webhooks/eventbridge/)\n"
            f"  notifications    {web_url}sandbox/notify/  (what the demo channel received)\n"
            f"\nSign in at {web_url} as admin with password {password}\n"
        )
        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    raise CommandError(
                        f"the {name} exited with code {process.returncode}; stopped the rest"
                    )
            time.sleep(0.5)

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        """A long-running child in its own process group: the terminal's Ctrl-C reaches only this
        command, which then stops the children in order."""
        process = subprocess.Popen(command, env=env, start_new_session=True)
        self.children.append((name, process))
        return process

    def step(self, command: list[str], env: dict[str, str]) -> None:
        self.say(f"manage.py {command[2]}")
        result = subprocess.run(command, env=env, check=False)
        if result.returncode != 0:
            raise CommandError(f"manage.py {command[2]} failed with exit code {result.returncode}")

    def wait_until_answers(self, name: str, url: str, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not answers(url):
            if process.poll() is not None:
                raise CommandError(
                    f"the {name} exited with code {process.returncode} before it answered"
                )
            if time.monotonic() > deadline:
                raise CommandError(
                    f"the {name} did not answer at {url} within {STARTUP_TIMEOUT:.0f} s"
                )
            time.sleep(0.1)

    def stop_children(self) -> None:
        """SIGTERM to each child (worker first, sandbox AWS last), SIGKILL to any process left in
        its group once it exited or after STOP_TIMEOUT."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for _name, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, process in reversed(self.children):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(
                    f"the {name} did not stop within {STOP_TIMEOUT:.0f} s; killing it"
                )
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.children.clear()
