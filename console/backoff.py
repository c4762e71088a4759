"""The one back-off rule of the console: the wait after the n-th failure in a row doubles from a
base up to a cap. Checks, inbox events and breakers each pass their own base and cap."""

from datetime import timedelta


def after_failures(failures: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """The wait after ``failures`` failures in a row (1 -> base, 2 -> 2 x base, ... capped).
    Zero or fewer failures wait the base too."""
    doublings = min(max(failures - 1, 0), 40)  # 2**40 x any base is past every cap
    factor: int = 2**doublings
    return min(base * factor, cap)
