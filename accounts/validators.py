import re

from django.core.exceptions import ValidationError

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ROLE_ARN = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}$", re.ASCII
)
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$", re.ASCII)
ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def validate_account_id(value: str) -> None:
    if not ACCOUNT_ID.fullmatch(value or ""):
        raise ValidationError(
            "An AWS account id is exactly 12 digits, got %(value)r.",
            params={"value": value},
            code="account_id",
        )


def validate_role_arn(value: str) -> None:
    if value and not ROLE_ARN.fullmatch(value):
        raise ValidationError(
            "%(value)r is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>).",
            params={"value": value},
            code="role_arn",
        )


def validate_external_id(value: str) -> None:
    if value and not EXTERNAL_ID.fullmatch(value):
        raise ValidationError(
            "An external id is 2 to 1224 characters of letters, digits and +=,.@:/-_.",
            code="external_id",
        )


def validate_environment(value: str) -> None:
    if not ENVIRONMENT.fullmatch(value or ""):
        raise ValidationError(
            "An environment label is lower-case letters, digits and dashes (prod, uat, dev, shared...).",
            code="environment",
        )


def validate_regions(value: list[str]) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one region.", code="regions")
    _validate_region_names(value)


def validate_usage_regions(value: list[str]) -> None:
    """Empty (every enabled region) or a list of known regions."""
    if not isinstance(value, list):
        raise ValidationError("Give a list of regions, or none for every region.", code="regions")
    _validate_region_names(value)


def _validate_region_names(value: list[str]) -> None:
    from accounts.aws import known_regions

    unknown = [region for region in value if region not in known_regions()]
    if unknown:
        raise ValidationError(
            "Unknown AWS region(s): %(regions)s.",
            params={"regions": ", ".join(map(str, unknown))},
            code="regions",
        )
    if len(set(value)) != len(value):
        raise ValidationError("A region is listed twice.", code="regions")


# AWS Organizations ids (the API reference's patterns): a root, and an organizational unit, whose
# id carries its root's id.
ROOT_ID = re.compile(r"^r-[0-9a-z]{4,32}$")
OU_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
# IAM role names: 1-64 of letters, digits and +=,.@_- (the StackSet's RoleName parameter).
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$", re.ASCII)


def validate_included_parents(value: list[str]) -> None:
    """Where the organization's accounts are taken from: roots (``r-...``) or organizational units
    (``ou-...-...``); empty for the whole organization."""
    _validate_id_list(value, allow_roots=True)


def validate_excluded_units(value: list[str]) -> None:
    """Organizational units left out, with every unit and account under them. A root cannot be
    excluded: that would leave nothing (disconnect instead)."""
    _validate_id_list(value, allow_roots=False)


def _validate_id_list(value: list[str], *, allow_roots: bool) -> None:
    if not isinstance(value, list):
        raise ValidationError("Give a list of organizational unit ids.", code="org_ids")
    wrong = [
        str(item)
        for item in value
        if not (
            isinstance(item, str)
            and (OU_ID.fullmatch(item) or (allow_roots and ROOT_ID.fullmatch(item)))
        )
    ]
    if wrong:
        expected = "ou-xxxx-yyyyyyyy or a root r-xxxx" if allow_roots else "ou-xxxx-yyyyyyyy"
        raise ValidationError(
            "Not an organizational unit id (%(expected)s): %(ids)s.",
            params={"expected": expected, "ids": ", ".join(wrong)},
            code="org_ids",
        )
    if len(set(value)) != len(value):
        raise ValidationError("An id is listed twice.", code="org_ids")


def validate_role_name(value: str) -> None:
    if not ROLE_NAME.fullmatch(value or ""):
        raise ValidationError(
            "%(value)r is not an IAM role name (1 to 64 letters, digits and +=,.@_-).",
            params={"value": value},
            code="role_name",
        )
