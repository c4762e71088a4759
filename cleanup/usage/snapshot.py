"""One snapshot of every usage source in every enabled account and usage region.

Fail closed: a source that cannot answer is recorded as an error and the snapshot is incomplete;
callers never read "no reference" from an incomplete snapshot as "unused"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from django.conf import settings

from accounts import actions as account_actions
from accounts import aws as accounts_aws
from accounts.models import AwsAccount
from cleanup import aws
from cleanup.models import RegistrySettings
from cleanup.usage.references import (
    SOURCE_CONFIG,
    SOURCE_ORGANIZATION,
    SOURCE_REGIONS,
    Reference,
    Unreadable,
)
from cleanup.usage.sources import ACCOUNT_SOURCES, Found, config_source

T = TypeVar("T")


@dataclass
class SourceAnswer:
    source: str
    account_id: str
    region: str
    ok: bool = True
    error: str = ""
    references: int = 0
    note: str = ""


@dataclass
class Snapshot:
    taken_at: datetime
    answers: list[SourceAnswer] = field(default_factory=list)
    by_repository: dict[tuple[str, str, str], list[Reference]] = field(
        default_factory=lambda: defaultdict(list)
    )
    unreadable: list[Unreadable] = field(default_factory=list)
    scope: dict[str, str] = field(default_factory=dict)  # account id -> where usage was read
    skipped: list[str] = field(default_factory=list)  # sources turned off by CLEANUP_SKIP_SOURCES

    @property
    def complete(self) -> bool:
        return all(answer.ok for answer in self.answers)

    @property
    def errors(self) -> list[str]:
        return [
            f"{a.source} {a.account_id}/{a.region}: {a.error}" for a in self.answers if not a.ok
        ] + [item.describe() for item in self.unreadable]

    def unreadable_for(self, registry_id: str) -> list[Unreadable]:
        return [item for item in self.unreadable if registry_id in item.registries]

    # Keyed by (registry, region, repository, digest) and (registry, region, repository, tag).
    _by_digest: dict[tuple[str, str, str, str], list[Reference]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _by_tag: dict[tuple[str, str, str, str | None], list[Reference]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, reference: Reference) -> None:
        self.by_repository[reference.repository].append(reference)
        if reference.digest:
            self._by_digest[(*reference.repository, reference.digest)].append(reference)
        else:
            self._by_tag[(*reference.repository, reference.tag)].append(reference)

    def references_to(
        self, key: tuple[str, str, str], digests: set[str], tags: set[str]
    ) -> list[Reference]:
        """References by digest to any of ``digests``, and by tag to any of ``tags`` (the tags
        that point at those digests now)."""
        found: list[Reference] = []
        for digest in sorted(digests):
            found += self._by_digest.get((*key, digest), [])
        for tag in sorted(tags):
            found += self._by_tag.get((*key, tag), [])
        return found

    def sources_json(self) -> list[dict[str, Any]]:
        return [asdict(answer) for answer in self.answers]

    def scope_json(self) -> dict[str, Any]:
        return {
            "accounts": dict(self.scope),
            "skipped": list(self.skipped),
            "unreadable": [item.describe() for item in self.unreadable[:20]],
        }


def take_snapshot(
    now: datetime,
    *,
    accounts: list[AwsAccount] | None = None,
    config_uris: dict[str, list[str]] | None = None,
    fresh_regions: bool = False,
) -> Snapshot:
    """Ask every source in every enabled account and region. ``config_uris`` maps a registry
    account id to the image URIs to ask its Config aggregator about (when it has one).
    ``fresh_regions``: discover the enabled regions now rather than from the day's cache (the
    deletion's snapshot: a region enabled since may already run the image)."""
    snapshot = Snapshot(taken_at=now, skipped=sorted(settings.CLEANUP_SKIP_SOURCES))
    if accounts is None:
        accounts = list(AwsAccount.objects.enabled())
        _waiting_members(snapshot)
    for account in accounts:
        try:
            regions = account_actions.usage_regions(account, now, fresh=fresh_regions)
        except Exception as exc:  # regions unknown: every source is unknown (fail closed)
            snapshot.answers.append(
                SourceAnswer(
                    SOURCE_REGIONS, account.account_id, "*", ok=False, error=_error_text(exc)
                )
            )
            continue
        snapshot.scope[account.account_id] = account.usage_scope
        for region in regions:
            clusters = _once(partial(aws.list_clusters, account, region))
            for name, service, source in ACCOUNT_SOURCES:
                if name in snapshot.skipped:
                    continue
                if not accounts_aws.offers(service, region):
                    snapshot.answers.append(
                        SourceAnswer(
                            name, account.account_id, region, note="not offered in this region"
                        )
                    )
                    continue
                _ask(
                    snapshot, name, account, region, partial(source, account, region, now, clusters)
                )
    if config_uris:
        configured = RegistrySettings.objects.select_related("account").exclude(
            config_aggregator_name=""
        )
        for registry in configured.filter(
            account__account_id__in=list(config_uris), account__enabled=True
        ):
            account = registry.account
            region = registry.config_aggregator_region or account.regions[0]
            uris = config_uris[account.account_id]
            _ask(
                snapshot,
                SOURCE_CONFIG,
                account,
                region,
                partial(config_source, account, region, registry.config_aggregator_name, uris),
            )
    return snapshot


def _waiting_members(snapshot: Snapshot) -> None:
    """An account the AWS Organization holds whose role has not verified yet may run any image:
    its workloads are unknown, so it fails the snapshot closed until it verifies (or is gone)."""
    from accounts.models import OrganizationMember

    waiting = OrganizationMember.objects.filter(state=OrganizationMember.State.PENDING)
    for account_id in waiting.values_list("account__account_id", flat=True):
        snapshot.answers.append(
            SourceAnswer(
                SOURCE_ORGANIZATION,
                account_id,
                "*",
                ok=False,
                error="a member of the AWS Organization whose role has not verified yet: "
                "its workloads cannot be read",
            )
        )


def _once(call: Callable[[], T]) -> Callable[[], T]:
    """``call``'s answer, asked at most once (the services and the tasks sources share the list of
    clusters); a failure is raised again to every caller."""
    answers: list[T] = []
    failures: list[Exception] = []

    def cached() -> T:
        if not answers and not failures:
            try:
                answers.append(call())
            except Exception as exc:  # re-raised below, for each source that needs it
                failures.append(exc)
        if failures:
            raise failures[0]
        return answers[0]

    return cached


def _error_text(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _ask(
    snapshot: Snapshot,
    name: str,
    account: AwsAccount,
    region: str,
    call: Callable[[], list[Found]],
) -> None:
    answer = SourceAnswer(source=name, account_id=account.account_id, region=region)
    try:
        found = [ref for ref in call() if ref is not None]
    except Exception as exc:  # any failure at all makes the snapshot incomplete: fail closed
        answer.ok = False
        answer.error = _error_text(exc)
    else:
        for item in found:
            if isinstance(item, Unreadable):
                snapshot.unreadable.append(item)
            else:
                answer.references += 1
                snapshot.add(item)
    snapshot.answers.append(answer)
