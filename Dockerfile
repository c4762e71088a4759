# syntax=docker/dockerfile:1
# The platform console: one image for the web server (the default command) and the worker:
#   docker run --env-file console.env IMAGE                           # web, gunicorn on port 8000
#   docker run --env-file console.env IMAGE python manage.py qcluster  # worker (same image)
#   docker run --env-file console.env IMAGE python manage.py migrate   # once per release
# Settings come from the environment (README: DATABASE_URL, SECRET_KEY, ALLOWED_HOSTS, ...).
# The HEALTHCHECK below probes the web server: give the worker's container its own check or turn
# it off (`docker run --no-healthcheck`, compose `healthcheck: {disable: true}`).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Only what the dependencies depend on, so code changes reuse this layer. psycopg[binary] and
# cryptography ship wheels: no compiler is needed.
COPY pyproject.toml README.md ./
RUN pip install .


FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 console \
    && useradd --system --uid 10001 --gid console --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin console
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# The code and the collected static files belong to root: the console only reads them.
COPY . .
# collectstatic imports the settings, which want a SECRET_KEY when DEBUG is off; these values
# exist for this one command and are not in the image's environment.
RUN SECRET_KEY=collectstatic-only-not-a-secret DEBUG=false \
        python manage.py collectstatic --no-input --verbosity 0 \
    && mkdir -p /app/data \
    && chown console:console /app/data
# data/ is only used with the SQLite default; production sets DATABASE_URL to PostgreSQL.
USER 10001:10001
EXPOSE 8000
# SECURE_SSL_REDIRECT is on by default with DEBUG off, and /healthz is exempt from it. The Host
# header is the first ALLOWED_HOSTS entry, so Django's host check accepts the probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", "import os, urllib.request as u; host = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('*.') or 'localhost'; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': host}), timeout=4)"]
# Worker class, threads and timeouts: gunicorn.conf.py (and why).
CMD ["gunicorn", "console.wsgi", "--config", "gunicorn.conf.py", "--access-logfile", "-"]
