"""A local HTTP receiver started by the test (Apprise's ``json://`` posts to it), and channels."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notify import actions
from notify.events import EVENT_TYPES
from notify.models import Channel
from tests.breaker.conftest import (  # noqa: F401  (a breaker in moto, for the events)
    breaker,
    function,
    production,
    shared_service_models,
)


class Receiver:
    """Every message Apprise posted, in order; ``fail_next`` answers 500 to that many posts."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.refused = 0
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                        receiver.refused += 1
                    else:
                        receiver.messages.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def titles(self) -> list[str]:
        with self.lock:
            return [message["title"] for message in self.messages]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def make_channel(db):
    def make(url: str, name: str = "ops", events=EVENT_TYPES, accounts=None) -> Channel:
        return actions.do_save_channel(
            None,
            actor="fixture",
            name=name,
            url=url,
            events=events,
            all_accounts=accounts is None,
            accounts=accounts or [],
            enabled=True,
        )

    return make


@pytest.fixture
def channel(make_channel, receiver) -> Channel:
    return make_channel(receiver.url)
