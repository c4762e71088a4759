"""Demo-only routes of the sandbox (``make demo``); every view answers 404 unless CONSOLE_SANDBOX is on.
Each feature keeps its demo buttons in its own module (``sandbox/demo_<feature>.py``, with ``urlpatterns``)."""

from importlib import import_module

app_name = "sandbox"
urlpatterns: list = []
for _module in ("sandbox.demo_cleanup", "sandbox.demo_breakers", "sandbox.demo_notify"):
    try:
        urlpatterns += import_module(_module).urlpatterns
    except ModuleNotFoundError as exc:
        if exc.name != _module:
            raise
