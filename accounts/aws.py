"""Sessions and clients for registered AWS accounts; the only boto3 entry point of ``accounts``.

``session(account, region)`` gives a boto3 session on credentials from ``sts:AssumeRole`` into the
account's role (or the console's own credentials when no role is set). The credentials refresh
themselves before they expire (botocore's refreshable credentials) and are cached per account, so
each account costs one AssumeRole an hour whatever the number of calls. Clients are cached per
account, region, service and configuration; they are thread-safe, sessions are not shared across
regions. boto3 itself honours ``AWS_ENDPOINT_URL`` (the sandbox of ``make demo`` relies on it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError
from django.conf import settings

if TYPE_CHECKING:
    from accounts.models import AwsAccount, Organization

ROLE_SESSION_NAME = "platform-console"
ROLE_SESSION_SECONDS = 3600
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}

_lock = threading.RLock()
_credentials: dict[tuple[str, str, str], DeferredRefreshableCredentials] = {}
_sessions: dict[tuple[str, str, str, str], boto3.Session] = {}
_clients: dict[tuple[str, str, str, str, str, str], Any] = {}


class AwsError(Exception):
    """An AWS call that did not answer as asked. ``retryable`` says whether trying later may help
    (throttling, a network error) or not (access denied, a missing resource)."""

    def __init__(
        self, message: str, *, code: str = "", retryable: bool = False, account_id: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.account_id = account_id

    def __str__(self) -> str:
        prefix = f"account {self.account_id}: " if self.account_id else ""
        return f"{prefix}{super().__str__()}"


@contextmanager
def translated_errors(
    account_id: str = "", error_class: type[AwsError] = AwsError
) -> Iterator[None]:
    """Turn botocore's exceptions into ``error_class`` with a ``retryable`` flag. An ``AwsError``
    of another class raised underneath (the account's credentials could not be refreshed: STS
    unreachable or refusing) becomes ``error_class`` too, so each app sees only its own."""
    try:
        yield
    except AwsError as exc:
        if isinstance(exc, error_class):
            raise
        raise error_class(
            super(AwsError, exc).__str__(),
            code=exc.code,
            retryable=exc.retryable,
            account_id=exc.account_id or account_id,
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = f"{code}: {error.get('Message', '')}".strip(": ")
        raise error_class(
            message,
            code=code,
            retryable=code in THROTTLING_CODES or status >= 500,
            account_id=account_id,
        ) from exc
    except (ConnectionError, ReadTimeoutError) as exc:
        raise error_class(
            str(exc), code=type(exc).__name__, retryable=True, account_id=account_id
        ) from exc
    except BotoCoreError as exc:
        raise error_class(
            str(exc), code=type(exc).__name__, retryable=False, account_id=account_id
        ) from exc


def client_config(**overrides: Any) -> Config:
    options: dict[str, Any] = {
        "retries": {"mode": "adaptive", "max_attempts": settings.AWS_MAX_ATTEMPTS},
        "connect_timeout": settings.AWS_CONNECT_TIMEOUT,
        "read_timeout": settings.AWS_READ_TIMEOUT,
        "user_agent_extra": "platform-console",
    }
    options.update(overrides)
    return Config(**options)


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Region names botocore knows in every partition (validation of registered regions)."""
    core = botocore.session.get_session()
    return frozenset(
        region
        for partition in core.get_available_partitions()
        for region in core.get_available_regions("ec2", partition_name=partition)
    )


@lru_cache(maxsize=1)
def _shared_loader() -> Any:
    """botocore's data loader (models, endpoints), which caches what it has parsed."""
    return botocore.session.get_session().get_component("data_loader")


def _console_session(region: str) -> boto3.Session:
    """The console's own credentials (environment, instance or task role)."""
    key = ("", "", "", region)
    with _lock:
        if key not in _sessions:
            _sessions[key] = boto3.Session(region_name=region)
        return _sessions[key]


def _assume_role(account: AwsAccount, region: str) -> Callable[[], dict[str, str]]:
    sts = _console_session(region).client("sts", config=client_config())
    params = {
        "RoleArn": account.role_arn,
        "RoleSessionName": ROLE_SESSION_NAME,
        "DurationSeconds": ROLE_SESSION_SECONDS,
    }
    if account.external_id:
        params["ExternalId"] = account.external_id

    def fetch() -> dict[str, str]:
        with translated_errors(account.account_id):
            answer = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": answer["Expiration"].isoformat(),
        }

    return fetch


def credentials(
    account: AwsAccount, *, time_fetcher: Callable[[], datetime] | None = None
) -> DeferredRefreshableCredentials:
    """Assumed-role credentials for ``account``, fetched on first use and refreshed by botocore
    ahead of expiry. ``time_fetcher`` lets tests move the clock."""
    key = (account.account_id, account.role_arn, account.external_id)
    with _lock:
        cached = _credentials.get(key)
        if cached is None or time_fetcher is not None:
            region = (account.regions or [settings.AWS_DEFAULT_REGION])[0]
            options = {"time_fetcher": time_fetcher} if time_fetcher else {}
            cached = DeferredRefreshableCredentials(
                refresh_using=_assume_role(account, region), method="sts-assume-role", **options
            )
            _credentials[key] = cached
        return cached


def session(account: AwsAccount, region: str) -> boto3.Session:
    """A boto3 session acting in ``account`` and ``region``."""
    if not account.role_arn:
        return _console_session(region)
    key = (account.account_id, account.role_arn, account.external_id, region)
    with _lock:
        cached = _sessions.get(key)
    if cached is not None:
        return cached
    core = botocore.session.get_session()
    # One loader for every account's session: a new one parses botocore's JSON models and
    # endpoint data again (a quarter of a second a session, an organization has hundreds).
    core.register_component("data_loader", _shared_loader())
    core._credentials = credentials(account)  # botocore's documented hook for custom providers
    created = boto3.Session(botocore_session=core, region_name=region)
    with _lock:
        # boto3 appends its own data folder to the (shared) loader's search path at every session.
        paths = _shared_loader().search_paths
        paths[:] = list(dict.fromkeys(paths))
        return _sessions.setdefault(key, created)


def client(account: AwsAccount, region: str, service: str, **config: Any) -> Any:
    """A cached client; ``config`` overrides the defaults (adaptive retries, timeouts)."""
    key = (
        account.account_id,
        account.role_arn,
        account.external_id,
        region,
        service,
        repr(sorted(config.items())),
    )
    with _lock:
        cached = _clients.get(key)
    if cached is not None:
        return cached
    created = session(account, region).client(service, config=client_config(**config))
    with _lock:
        return _clients.setdefault(key, created)


def caller_account(account: AwsAccount) -> str:
    """The account id AWS says these credentials act in (``sts:GetCallerIdentity``)."""
    region = (account.regions or [settings.AWS_DEFAULT_REGION])[0]
    with translated_errors(account.account_id):
        account_id: str = client(account, region, "sts").get_caller_identity()["Account"]
    return account_id


def enabled_regions(account: AwsAccount) -> list[str]:
    """The regions enabled in the account (``ec2:DescribeRegions`` without ``AllRegions`` answers
    only those: the default ones and the opted-in ones), sorted."""
    region = (account.regions or [settings.AWS_DEFAULT_REGION])[0]
    with translated_errors(account.account_id):
        answer = client(account, region, "ec2").describe_regions()
    return sorted(
        entry["RegionName"]
        for entry in answer.get("Regions", [])
        if entry.get("OptInStatus", "opt-in-not-required") != "not-opted-in"
    )


@lru_cache(maxsize=4096)
def offers(service: str, region: str) -> bool:
    """Whether AWS offers ``service`` in ``region``, from botocore's endpoint data. A region that
    botocore does not know at all is assumed to offer it (asking fails closed; skipping would not)."""
    core = botocore.session.get_session()
    for partition in core.get_available_partitions():
        if region in core.get_available_regions(service, partition_name=partition):
            return True
    return region not in known_regions()


# --- AWS Organizations ---------------------------------------------------------------------------


# The largest page the Organizations list calls answer (MaxResults 1-20).
PAGE = {"PageSize": 20}


@dataclass(frozen=True)
class OrgAccount:
    account_id: str
    name: str
    state: str  # ``State``; ``Status`` where an older answer has no State (Status retires 2026-09)
    parent_id: str = ""  # the root or unit it was listed under; empty when read by ListAccounts


@dataclass
class OrganizationRead:
    """Every account in scope, read whole: a failure anywhere raises instead."""

    accounts: list[OrgAccount] = field(default_factory=list)
    units_read: int = 0


def _organizations_reader(organization: Organization) -> AwsAccount:
    """The organizations role as an account the session machinery understands (credentials
    cached per role and refreshed like every account's)."""
    from accounts.models import AwsAccount

    return AwsAccount(
        account_id=organization.management_account_id,
        role_arn=organization.role_arn,
        external_id=organization.external_id,
        regions=[organization.api_region],
    )


def organizations_client(organization: Organization) -> Any:
    """The Organizations client acting through the organization's role (a global service: its
    endpoint lives in one region of the partition)."""
    return client(_organizations_reader(organization), organization.api_region, "organizations")


def read_organization(organization: Organization) -> OrganizationRead:
    """The accounts in the organization's scope. No included or excluded unit: ``ListAccounts``.
    Otherwise the tree is walked from the included units (or the roots, ``ListRoots``): the
    accounts of each parent (``ListAccountsForParent``) and its child units
    (``ListOrganizationalUnitsForParent``), never entering an excluded unit. Every list is read
    to its last page (the API may answer an empty page with a NextToken). An excluded unit that
    the walk never meets is an error: a mistyped id would otherwise let in the very accounts it
    was meant to keep out."""
    read = OrganizationRead()
    with translated_errors(organization.management_account_id):
        api = organizations_client(organization)
        if not organization.include_ous and not organization.exclude_ous:
            for page in api.get_paginator("list_accounts").paginate(PaginationConfig=PAGE):
                read.accounts += [_org_account(entry, "") for entry in page.get("Accounts", [])]
            return read
        excluded = set(organization.exclude_ous)
        met: set[str] = set()
        parents = list(organization.include_ous) or [
            root["Id"]
            for page in api.get_paginator("list_roots").paginate(PaginationConfig=PAGE)
            for root in page.get("Roots", [])
        ]
        walked: set[str] = set()
        while parents:
            parent = parents.pop(0)
            if parent in walked:
                continue
            walked.add(parent)
            accounts = api.get_paginator("list_accounts_for_parent")
            for page in accounts.paginate(ParentId=parent, PaginationConfig=PAGE):
                read.accounts += [_org_account(a, parent) for a in page.get("Accounts", [])]
            units = api.get_paginator("list_organizational_units_for_parent")
            for page in units.paginate(ParentId=parent, PaginationConfig=PAGE):
                for unit in page.get("OrganizationalUnits", []):
                    if unit["Id"] in excluded:
                        met.add(unit["Id"])
                    else:
                        parents.append(unit["Id"])
            read.units_read += 1
    missing = sorted(excluded - met)
    if missing:
        raise AwsError(
            f"excluded unit(s) {', '.join(missing)} not found in the organization"
            f"{' under the included units' if organization.include_ous else ''}",
            code="ExcludedUnitNotFound",
            account_id=organization.management_account_id,
        )
    return read


def _org_account(entry: dict[str, Any], parent_id: str) -> OrgAccount:
    return OrgAccount(
        account_id=entry["Id"],
        name=entry.get("Name", "") or entry["Id"],
        state=entry.get("State") or entry.get("Status") or "",
        parent_id=parent_id,
    )


def clear_caches() -> None:
    """Forget every cached credential, session and client (tests; after credentials rotate)."""
    with _lock:
        _credentials.clear()
        _sessions.clear()
        _clients.clear()
