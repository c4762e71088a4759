"""moto's server for the tests and benches that run the console as real processes, and its
configuration, which ``make demo`` applies to the sandbox's moto server too."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Lambda answers invocations without running code (no Docker here): the breaker's probes call it.
CONFIG = {"lambda": {"use_docker": False}}


def post(url: str, path: str, body: dict[str, Any]) -> None:
    """POST JSON to moto's own API (``/moto-api/...``) of the server at ``url``."""
    request = urllib.request.Request(  # noqa: S310 (a URL of the caller's own moto server)
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def configure(url: str, *, reset: bool = False) -> None:
    """Apply ``CONFIG`` to the server at ``url``, after emptying it when ``reset``."""
    if reset:
        post(url, "/moto-api/reset", {})
    post(url, "/moto-api/config", CONFIG)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def in_this_process() -> Iterator[str]:
    """moto's server on a free loopback port, in a thread of this process (so
    ``scenarios.moto_patches`` act on it), emptied and configured; yields its URL for
    ``AWS_ENDPOINT_URL``."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        configure(url, reset=True)
        yield url
    finally:
        server.stop()
