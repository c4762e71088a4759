"""Settings of the platform console.

Everything an operator sets comes from the environment (an optional ``.env`` file beside
``manage.py`` is read first). A malformed value stops start-up with a message naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ

from console import env

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / "data"

environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.boolean("DEBUG", False)
SECRET_KEY = env.raw("SECRET_KEY") or (
    "insecure-development-key-only-used-with-debug-on" if DEBUG else None
)
if SECRET_KEY is None:
    SECRET_KEY = env.required("SECRET_KEY", "when DEBUG is off")

ALLOWED_HOSTS = env.string_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.string_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    # Before django_q: its qcluster command is the console's (schedules written at start).
    "console",
    "django_q",
    "console.logs.ObservabilityConfig",
    "accounts",
    "audit",
    "webhooks",
    "cleanup",
    "breaker",
    "notify",
    "sandbox",
]

MIDDLEWARE = [
    "console.logs.RequestContextMiddleware",
    "console.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "accounts.actors.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "console.pages.NotFoundPageMiddleware",  # the console's 404 page with DEBUG on too
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a refused sign-in into the sign-in page saying why (accounts/signin.py).
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy on every answer: only the console's own scripts, styles and images (no
# inline script or style anywhere: htmx's indicator styles are off, see base.html), no framing,
# forms post only here. django-csp until Django 6 has it built in.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.console",
                "console.oidc.login_options",
            ],
        },
    },
]

DATABASES = {
    "default": env.database("DATABASE_URL", f"sqlite:///{DATA_DIR / 'console.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.integer("DATABASE_CONN_MAX_AGE", 60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(exist_ok=True)
    # WAL lets the web server read while the worker writes; IMMEDIATE avoids upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security. Defaults are strict; a proxy that terminates TLS sets SECURE_PROXY_SSL_HEADER=true
# (trust X-Forwarded-Proto) and may turn the redirect off with SECURE_SSL_REDIRECT=false.
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^healthz/worker$", r"^metrics$"]
if env.boolean("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Background work (django-q2). Every task's timeout stays below the cluster's retry, otherwise
# a slow task is handed to a second worker while the first still runs it.
Q_REDIS_URL = env.redis_url("Q_REDIS_URL")
Q_CLUSTER = {
    "name": "console",
    "workers": env.integer("Q_WORKERS", 2, minimum=1),
    "timeout": 240,
    # A task a dead worker had pulled is handed out again after this. Above every ordinary task's
    # timeout. A probe may run longer (a Lambda function's 15-minute timeout): it carries its own
    # timeout, and a second delivery of a probe still running finds the breaker's probe lease
    # held and does nothing; the work itself (inbox events, checks, probes) is claimed on its rows
    # with leases of its own, re-taken by the next run after a crash, not after this retry.
    "retry": 300,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 500,
    # The ORM broker is polled: how long an idle worker waits before looking again (seconds).
    # 0.2 s keeps an alarm's disable well under a second for one cheap query per worker.
    "poll": env.decimal_number("Q_POLL", 0.2, minimum=0.01),
    "label": "Tasks",
}
if Q_REDIS_URL:
    Q_CLUSTER["redis"] = Q_REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
# Alarms have a queue of their own, worked by a second cluster that the console's `qcluster`
# starts beside the main one (django-q2's ALT_CLUSTERS: its settings apply in the process started
# with Q_CLUSTER_NAME=console-alarms). A burst of CloudTrail events or a long probe in the main
# queue never delays a breaker decision. It runs no schedules (the main cluster's scheduler does).
Q_ALARM_CLUSTER = "console-alarms"
Q_CLUSTER["ALT_CLUSTERS"] = {
    Q_ALARM_CLUSTER: {
        "workers": env.integer("Q_ALARM_WORKERS", 1, minimum=1),
        "scheduler": False,
    }
}

# AWS. boto3 reads AWS_ENDPOINT_URL, AWS_REGION and credentials itself.
AWS_DEFAULT_REGION = env.raw("AWS_REGION") or env.raw("AWS_DEFAULT_REGION") or "eu-west-1"
AWS_CONNECT_TIMEOUT = env.integer("AWS_CONNECT_TIMEOUT", 5, minimum=1)
AWS_READ_TIMEOUT = env.integer("AWS_READ_TIMEOUT", 30, minimum=1)
AWS_MAX_ATTEMPTS = env.integer("AWS_MAX_ATTEMPTS", 6, minimum=1)

# Webhooks.
WEBHOOK_API_KEYS = env.string_list("WEBHOOK_API_KEYS")
SNS_TOPIC_ARNS = env.string_list("SNS_TOPIC_ARNS")

# ECR cleanup.
CLEANUP_GRACE_PERIOD = env.duration("CLEANUP_GRACE_PERIOD", "24h")
CLEANUP_REQUIRE_APPROVAL = env.boolean("CLEANUP_REQUIRE_APPROVAL", True)
CLEANUP_DRY_RUN = env.boolean("CLEANUP_DRY_RUN", False)
CLEANUP_OPT_IN_TAG = env.key_value("CLEANUP_OPT_IN_TAG", "ecr-cleanup=enabled")
CLEANUP_PRICE_PER_GB_MONTH = env.decimal_number("CLEANUP_PRICE_PER_GB_MONTH", 0.10)
# ECR's archival storage class, USD per GB-month (archive and archive-then-delete repositories).
# AWS charges the standard price for the first 150 TB a month and less above it, so the default
# is CLEANUP_PRICE_PER_GB_MONTH (archiving saves nothing below 150 TB); set 0.07 where the
# registry is past it. Archived images are charged 90 days at least (cleanup.savings).
CLEANUP_ARCHIVE_PRICE_PER_GB_MONTH = env.decimal_number(
    "CLEANUP_ARCHIVE_PRICE_PER_GB_MONTH", CLEANUP_PRICE_PER_GB_MONTH
)
# An image ECR saw pulled this recently is kept whatever the sources say: consumers the console
# cannot list (EKS, CI, laptops) pulled it. 0s turns the guard off.
CLEANUP_KEEP_PULLED_WITHIN = env.duration("CLEANUP_KEEP_PULLED_WITHIN", "14d")
# Usage sources not to ask (for a platform without App Runner, say); every check's evidence says
# which were left out. Checked against the known names when the cleanup app starts.
CLEANUP_SKIP_SOURCES = env.string_list("CLEANUP_SKIP_SOURCES")


# Notifications (notify/). NOTIFY_URLS: Apprise URLs separated by spaces or new lines, each a
# channel of every event and account besides those admins add in the console. NOTIFY_BASE_URL:
# the console's address, so a message links to its pages (https://console.example.com).
def _notify_urls(name: str) -> list[str]:
    from notify import apprise_urls

    value = env.raw(name, "")
    try:
        return apprise_urls.parse_list(value)
    except apprise_urls.InvalidUrl as exc:
        raise env.SettingError(name, "(hidden: it holds secrets)", str(exc).rstrip(".")) from None


NOTIFY_URLS = _notify_urls("NOTIFY_URLS")
NOTIFY_BASE_URL = env.raw("NOTIFY_BASE_URL", "").rstrip("/")
if NOTIFY_BASE_URL and not NOTIFY_BASE_URL.startswith(("https://", "http://")):
    raise env.SettingError("NOTIFY_BASE_URL", NOTIFY_BASE_URL, "expected an http(s):// URL")
NOTIFY_DIGEST_HOUR = env.integer("NOTIFY_DIGEST_HOUR", 8)
if NOTIFY_DIGEST_HOUR > 23:
    raise env.SettingError("NOTIFY_DIGEST_HOUR", str(NOTIFY_DIGEST_HOUR), "expected 0 to 23")
NOTIFY_STUCK_HALF_OPEN_AFTER = env.duration("NOTIFY_STUCK_HALF_OPEN_AFTER", "1h")

# The sandbox AWS of `make demo` (demo-only buttons appear only when this is on).
SANDBOX = env.boolean("CONSOLE_SANDBOX", False)

# Logs: LOG_FORMAT=json writes one JSON object per line with the request id, actor and domain ids.
LOG_FORMAT = env.raw("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise env.SettingError("LOG_FORMAT", LOG_FORMAT, "expected json or plain")
LOG_LEVEL = env.raw("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise env.SettingError("LOG_LEVEL", LOG_LEVEL, "expected DEBUG, INFO, WARNING or ERROR")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "console.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "console.logs.ConsoleJsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # runserver's access lines: the request line of console.logs replaces them.
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}

# Metrics: GET /metrics with "Authorization: Bearer <METRICS_TOKEN>"; unset, the page is a 404.
METRICS_TOKEN = env.raw("METRICS_TOKEN")
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 16:
    raise env.SettingError("METRICS_TOKEN", "(hidden)", "expected at least 16 characters")

# Single sign-on (OpenID Connect), on when OIDC_RP_CLIENT_ID is set. LOCAL_LOGIN=false turns off
# user name and password sign-in (then single sign-on must be configured).
LOCAL_LOGIN = env.boolean("LOCAL_LOGIN", True)
OIDC_RP_CLIENT_ID = env.raw("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = OIDC_RP_CLIENT_ID is not None
# First: refuses a sign-in locked out by too many failures before any password is checked.
AUTHENTICATION_BACKENDS = ["accounts.signin.SignInLimitBackend"]
if LOCAL_LOGIN:
    AUTHENTICATION_BACKENDS.append("django.contrib.auth.backends.ModelBackend")

# Failed sign-ins (django-axes, see accounts/signin.py): after LOGIN_FAILURE_LIMIT failures for
# one user name, or from one address, within LOGIN_FAILURE_WINDOW, password sign-in is refused
# until the window has passed without another failure. Counted in the database, so every web
# process sees the same counts. A success does not reset the counts: it would let a valid account
# reset the counter of the address it guesses other accounts' passwords from.
AXES_FAILURE_LIMIT = env.integer("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = env.duration("LOGIN_FAILURE_WINDOW", "15m")
if AXES_COOLOFF_TIME.total_seconds() < 60:
    raise env.SettingError(
        "LOGIN_FAILURE_WINDOW", env.raw("LOGIN_FAILURE_WINDOW", "15m"), "expected at least 1m"
    )
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "accounts.signin.client_ip"
AXES_WHITELIST_CALLABLE = "accounts.signin.is_not_a_password_attempt"
AXES_LOCKOUT_CALLABLE = "accounts.signin.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in the audit history already
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # failures and lock-outs, not every sign-in
# Behind a load balancer or reverse proxy, the client's address is in X-Forwarded-For: set how
# many proxies in front of the console append to it (1 behind an ALB). 0 trusts no header and
# uses the connection's address (behind a proxy that would be the proxy's own, for everyone).
TRUSTED_PROXY_COUNT = env.integer("TRUSTED_PROXY_COUNT", 0)


def _https_url(name: str) -> str:
    value = env.required(name, "when OIDC_RP_CLIENT_ID is set")
    if not value.startswith("https://") and not (DEBUG and value.startswith("http://")):
        raise env.SettingError(name, value, "expected an https:// URL")
    return value


def _group_map(name: str, default: str) -> dict[str, str]:
    value = env.raw(name, default)
    mapping = {}
    for item in value.split(","):
        group, sep, role = (part.strip() for part in item.partition("="))
        if not item.strip():
            continue
        if not sep or not group or role not in {"viewer", "operator", "admin"}:
            raise env.SettingError(
                name, value, "expected IDP_GROUP=ROLE pairs, ROLE one of viewer, operator, admin"
            )
        mapping[group] = role
    return mapping


if OIDC_ENABLED:
    OIDC_RP_CLIENT_SECRET = env.required("OIDC_RP_CLIENT_SECRET", "when OIDC_RP_CLIENT_ID is set")
    OIDC_OP_AUTHORIZATION_ENDPOINT = _https_url("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = _https_url("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = _https_url("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = _https_url("OIDC_OP_JWKS_ENDPOINT")
    OIDC_OP_ISSUER = env.raw("OIDC_OP_ISSUER")
    OIDC_RP_SIGN_ALGO = env.raw("OIDC_RP_SIGN_ALGO", "RS256")
    if OIDC_RP_SIGN_ALGO not in {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}:
        raise env.SettingError("OIDC_RP_SIGN_ALGO", OIDC_RP_SIGN_ALGO, "expected RS256 or ES256")
    OIDC_RP_SCOPES = env.raw("OIDC_RP_SCOPES", "openid email profile")
    OIDC_TIMEOUT = env.integer("OIDC_TIMEOUT", 10, minimum=1)
    OIDC_USE_PKCE = True
    OIDC_CREATE_USER = env.boolean("OIDC_CREATE_USER", True)
    AUTHENTICATION_BACKENDS.insert(0, "console.oidc.ConsoleOIDCBackend")
elif not LOCAL_LOGIN:
    raise env.SettingError(
        "LOCAL_LOGIN", "false", "nobody could sign in: set OIDC_RP_CLIENT_ID too"
    )
OIDC_GROUPS_CLAIM = env.raw("OIDC_GROUPS_CLAIM", "groups")
OIDC_GROUP_MAP = _group_map(
    "OIDC_GROUP_MAP", "console-viewers=viewer,console-operators=operator,console-admins=admin"
)
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
