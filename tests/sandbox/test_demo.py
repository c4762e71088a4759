"""``manage.py demo`` end to end: sandbox AWS, web server and worker start, and Ctrl-C stops them."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import CommandError, call_command

STARTUP_TIMEOUT = 120.0  # the seed reads production in every region moto enables (38)
STOP_TIMEOUT = 15.0
BANNER = re.compile(r"Sign in at (\S+) as admin with password (\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_running(pid: int) -> bool:
    """True while any process of the group ``pid`` leads (every demo child leads its own) is alive."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Output:
    """The demo's combined output, read line by line in a thread so the pipe never fills up."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("demo output so far:\n" + "".join(self.lines)) from None
            self.lines.append(line)
            if match := pattern.search(line):
                return match


def wait_until_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with suppress(requests.ConnectionError):
            if requests.get(url, timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
        time.sleep(0.1)


def test_the_demo_serves_the_three_sandbox_accounts_and_stops_everything_on_ctrl_c(tmp_path):
    inherited = {
        name: value for name, value in os.environ.items() if name != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "DEBUG": "true",
        "DEMO_PORT": str(free_port()),
        "DEMO_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(demo.stdout)
    children: list[int] = []
    try:
        url, password = output.wait_for(BANNER, STARTUP_TIMEOUT).groups()
        children = [int(pid) for pid in re.findall(r"pid (\d+)", "".join(output.lines))]
        wait_until_healthy(f"{url}healthz", timeout=10)

        browser = requests.Session()
        browser.get(f"{url}login/", timeout=10)
        signed_in = browser.post(
            f"{url}login/",
            data={
                "username": "admin",
                "password": password,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            timeout=10,
        )
        accounts = browser.get(f"{url}accounts/", timeout=10)

        assert signed_in.url == url
        assert accounts.status_code == 200
        for account_id in ("111111111111", "222222222222", "333333333333"):
            assert f'id="account-{account_id}"' in accounts.text
        assert Path(tmp_path / "demo.sqlite3").exists()
        assert len(children) == 3 and all(is_running(pid) for pid in children)

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=STOP_TIMEOUT) == 0
        assert [pid for pid in children if is_running(pid)] == []
    finally:
        for pid in [demo.pid, *children]:
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        demo.wait()


def test_the_demo_refuses_a_web_port_that_is_in_use_and_starts_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(CommandError, match=f"port {port} is in use"):
            call_command("demo", port=port, data_dir=tmp_path)

    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
