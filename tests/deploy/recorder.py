"""Records every AWS operation the console's own code calls while the test suite runs.

``install()`` wraps botocore's ``BaseClient._make_api_call`` (every call goes through it:
paginators, waiters, and calls answered by moto or a Stubber). A call counts when the innermost
frame of this repository on the stack is one of the console's AWS gateways; calls made by tests
setting up moto, and by the demo's sandbox, are not the console's and are left out.

At the end of the session ``check(session)`` compares the calls with the templates: an operation
the templates do not grant fails the run, whatever the order the tests ran in. Granted actions
that were never called are listed; when the whole suite ran they must be in ``NEVER_CALLED_OK``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from botocore.client import BaseClient

from tests.deploy import permissions

ROOT = permissions.ROOT
GATEWAYS = (
    ROOT / "accounts" / "aws.py",
    ROOT / "cleanup" / "aws",  # a package: ecr, workloads
    ROOT / "breaker" / "aws.py",
    ROOT / "webhooks",
)
OUTSIDE = (ROOT / ".venv",)
# Granted on purpose although the suite does not call them; each says why.
NEVER_CALLED_OK: dict[str, str] = {
    "ecs:DescribeTasks": (
        "cleanup/aws/workloads.py reads running tasks' pinned digests; moto runs no task without EC2 "
        "capacity, so ListTasks answers empty and DescribeTasks is never reached in the suite"
    ),
}
# The test folders whose tests drive the gateways: only a run that includes them all can tell
# which granted actions are never called.
DRIVING_FOLDERS = {"accounts", "cleanup", "breaker"}

calls: set[tuple[str, str]] = set()
_lock = threading.Lock()
_original = BaseClient._make_api_call


def attributed_to_console() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(ROOT) and not any(path.is_relative_to(o) for o in OUTSIDE):
            return any(path == g or path.is_relative_to(g) for g in GATEWAYS)
        frame = frame.f_back
    return False


def _recording_make_api_call(self, operation_name, api_params):
    if attributed_to_console():
        with _lock:
            calls.add((self.meta.service_model.service_name, operation_name))
    return _original(self, operation_name, api_params)


def install() -> None:
    BaseClient._make_api_call = _recording_make_api_call


def whole_suite_ran(session: pytest.Session) -> bool:
    tests = ROOT / "tests"
    folders = {
        Path(item.path).relative_to(tests).parts[0]
        for item in session.items
        if Path(item.path).is_relative_to(tests)
    }
    selected = not session.config.getoption("keyword") and not session.config.getoption("markexpr")
    return selected and folders >= DRIVING_FOLDERS


def check(session: pytest.Session) -> None:
    """pytest_sessionfinish: fail the run when the code called an action no template grants."""
    if not calls:
        return
    result = permissions.compare(calls, permissions.load_all())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else print
    write("")
    write(
        f"AWS permissions coverage: {len(calls)} operations called by the console's gateways, "
        f"{len(calls) - len(result.missing)} granted by deploy/cloudformation/."
    )
    if result.missing:
        write("AWS permissions coverage: the code called actions the templates do not grant:")
        for line in result.missing:
            write(f"  {line}")
        write("  (add them to deploy/cloudformation/, scoped as tightly as the service allows)")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if session.config.getoption("verbose") > 0:
        for service, operation in sorted(calls):
            write(f"  called: {permissions.iam_action(service, operation)}")
    if whole_suite_ran(session):
        for line in result.unused:
            write(f"  granted, never called: {line}")
    if whole_suite_ran(session) and session.exitstatus == pytest.ExitCode.OK:
        unexplained = [
            line for line in result.unused if line.split(": ", 1)[1] not in NEVER_CALLED_OK
        ]
        if unexplained:
            write("")
            write("AWS permissions coverage: granted but never called by the suite (remove them,")
            write("or explain them in tests/deploy/recorder.py NEVER_CALLED_OK):")
            for line in unexplained:
                write(f"  {line}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
