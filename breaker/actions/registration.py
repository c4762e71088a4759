"""Adding a breaker and changing its settings: what the add form offers (discovered in AWS), and
the checks that nothing is registered on a mapping, function or alarm that does not fit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from accounts.models import AwsAccount
from accounts.validators import validate_regions
from breaker import aws
from breaker.actions.machine import locked, target
from breaker.aws import BreakerAwsError
from breaker.forms import SettingsForm
from breaker.models import Breaker, alarm_name_of
from console import clock

SETTINGS_FIELDS = list(SettingsForm.Meta.fields)


class DiscoveryError(Exception):
    pass


@dataclass(frozen=True)
class Discovery:
    mappings: list[aws.Mapping]
    alarms: list[aws.Alarm]


def discover_targets(account: AwsAccount, region: str) -> Discovery:
    """What the add form offers: the SQS event source mappings of the region (so nobody types a
    UUID) and the account's alarms there."""
    try:
        return Discovery(
            mappings=aws.sqs_mappings(account, region), alarms=aws.list_alarms(account, region)
        )
    except BreakerAwsError as exc:
        raise DiscoveryError(f"Could not read {account.account_id} in {region}: {exc}") from exc


def do_add_breaker(
    *,
    actor: str,
    name: str,
    account: AwsAccount,
    region: str,
    function_name: str,
    alarms: list[str],
    mapping_uuid: str = "",
    now: datetime | None = None,
    **settings: Any,
) -> Breaker:
    """Register a breaker on a function's SQS event source mapping. The mapping is looked up in
    AWS (found by function when it has exactly one SQS mapping); raises ``ValidationError`` with
    a precise message and writes nothing when anything does not fit."""
    now = now or clock.now()
    unknown = set(settings) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}")
    alarms = [alarm.strip() for alarm in alarms if alarm and alarm.strip()]
    if not alarms:
        raise ValidationError({"alarms": "Name at least one alarm that opens the breaker."})
    if Breaker.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A breaker named {name} exists already."})
    try:
        validate_regions([region])
    except ValidationError as exc:
        raise ValidationError({"region": exc.messages}) from None
    if mapping_uuid:
        try:
            mapping_uuid = str(uuid.UUID(mapping_uuid))
        except ValueError:
            raise ValidationError(
                {"mapping_uuid": f"{mapping_uuid!r} is not an event source mapping UUID."}
            ) from None
    check_alarms(alarms, account, region)
    try:
        function = aws.function_config(account, region, function_name)
        if function is None:
            raise ValidationError(
                {"function_name": f"No function {function_name} in {account.account_id} {region}."}
            )
        mapping = _find_mapping(account, region, function.name, mapping_uuid)
        other = Breaker.objects.filter(mapping_uuid=mapping.uuid).first()
        if other is not None:
            raise ValidationError(
                {"mapping_uuid": f"Breaker {other.name} already watches mapping {mapping.uuid}."}
            )
        url = aws.queue_url(account, region, mapping.event_source_arn)
        _check_alarms_exist(alarms, account, region)
    except BreakerAwsError as exc:
        raise ValidationError(f"AWS did not answer: {exc}") from exc
    breaker = Breaker(
        name=name,
        account=account,
        region=region,
        function_name=function.name,
        mapping_uuid=mapping.uuid,
        queue_arn=mapping.event_source_arn,
        queue_url=url,
        alarms=alarms,
        reports_batch_item_failures=mapping.reports_batch_item_failures,
        function_timeout_seconds=function.timeout,
        mapping_state=mapping.state,
        mapping_max_concurrency=mapping.max_concurrency,
        mapping_checked_at=now,
        **settings,
    )
    breaker.full_clean()
    with transaction.atomic():
        breaker.save()
        audit.record(
            actor,
            "breaker.added",
            details={
                "function": breaker.function_name,
                "mapping": breaker.mapping_uuid,
                "queue": breaker.queue_arn,
                "alarms": alarms,
                **{f: getattr(breaker, f) for f in SETTINGS_FIELDS if f != "alarms"},
            },
            at=now,
            **target(breaker),
        )
    return breaker


def _find_mapping(
    account: AwsAccount, region: str, function_name: str, mapping_uuid: str
) -> aws.Mapping:
    """The SQS mapping named, or the function's only one; ``ValidationError`` otherwise."""
    if not mapping_uuid:
        mappings = aws.sqs_mappings(account, region, function_name)
        if len(mappings) != 1:
            raise ValidationError(
                {
                    "mapping_uuid": f"{function_name} has {len(mappings)} SQS event source mappings; name one."
                }
            )
        return mappings[0]
    mapping = aws.get_mapping(account, region, mapping_uuid)
    if mapping is None:
        raise ValidationError(
            {"mapping_uuid": f"No event source mapping {mapping_uuid} in {region}."}
        )
    if mapping.function_name != function_name:
        raise ValidationError(
            {
                "mapping_uuid": f"Mapping {mapping_uuid} belongs to {mapping.function_name}, not {function_name}."
            }
        )
    if not mapping.is_sqs:
        raise ValidationError(
            {"mapping_uuid": f"Mapping {mapping_uuid} does not read an SQS queue."}
        )
    return mapping


def check_alarms(alarms: list[str], account: AwsAccount, region: str) -> None:
    """Notifications are matched in the breaker's account and region: an ARN elsewhere would
    never match."""
    for alarm in alarms:
        if alarm.startswith("arn:") and (
            alarm.split(":")[3:5] != [region, account.account_id] or ":alarm:" not in alarm
        ):
            raise ValidationError(
                {"alarms": f"{alarm} is not an alarm of {account.account_id} in {region}."}
            )


def _check_alarms_exist(alarms: list[str], account: AwsAccount, region: str) -> None:
    """A breaker watching an alarm that does not exist would never open."""
    found = aws.describe_alarms(account, region, {alarm_name_of(alarm) for alarm in alarms})
    missing = [alarm for alarm in alarms if alarm_name_of(alarm) not in found]
    if missing:
        raise ValidationError(
            {
                "alarms": f"No alarm {', '.join(missing)} in {account.account_id} {region}: "
                "a breaker would never open on it."
            }
        )


def do_update_settings(
    breaker: Breaker, *, actor: str, now: datetime | None = None, **changes: Any
) -> list[str]:
    now = now or clock.now()
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        row = locked(breaker.pk)
        before = {name: getattr(row, name) for name in changes}
        changed = [name for name, value in changes.items() if before[name] != value]
        if not changed:
            return []
        for name in changed:
            setattr(row, name, changes[name])
        if "alarms" in changed:
            if not row.alarms:
                raise ValidationError({"alarms": "Name at least one alarm that opens the breaker."})
            check_alarms(row.alarms, row.account, row.region)
        row.full_clean()
        row.save(update_fields=changed)
        audit.record(
            actor,
            "breaker.settings_changed",
            details={name: {"from": before[name], "to": changes[name]} for name in changed},
            at=now,
            **target(row),
        )
    breaker.refresh_from_db()
    return changed
