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
