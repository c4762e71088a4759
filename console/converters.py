"""URL converters that refuse, with a 404, what the database could not look up: a primary key
too large for its column (``<int:...>`` would pass 10**30 to the query and fail with a 500), an
account id that is not 12 ASCII digits (a NUL would reach PostgreSQL)."""

from django.urls import register_converter


class RowId:
    regex = "[0-9]{1,18}"  # below 2**63 - 1: every primary key column takes it

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class AccountId:
    regex = "[0-9]{12}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return str(value)


register_converter(RowId, "id")
register_converter(AccountId, "account")
