"""gunicorn's settings for the console's web tier (read from the working directory by
``gunicorn``; the Dockerfile, docker-compose.yml and ``make run`` all start it from here).

- ``gthread`` workers with a few threads: a load balancer keeps connections open (keep-alive) and
  slow clients would otherwise hold a whole sync worker; Django is thread-safe.
- ``timeout = 30``: no request waits on AWS (trips, resets, probes and SNS confirmations are
  handed to the worker), so a request still running after 30 s is a bug or a stuck database:
  gunicorn restarts that worker and logs it rather than let it hold a slot forever.
- ``graceful_timeout = 30``: a deploy lets requests in flight finish.
"""

import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 30
keepalive = 5
# The workers' heartbeat files in memory (gunicorn's advice for containers, whose /tmp may be a
# slow overlay); the directory is gunicorn's own use, not data.
SHARED_MEMORY = "/dev/shm"  # noqa: S108
worker_tmp_dir = SHARED_MEMORY if os.path.isdir(SHARED_MEMORY) else None
