"""What every operator command shares: who acts, and how a validation error reads."""

import getpass

from django.core.exceptions import ValidationError


def cli_actor() -> str:
    """The audit actor of a command: ``cli:<os user>``."""
    return f"cli:{getpass.getuser()}"


def describe(error: ValidationError) -> str:
    """``field: message; field: message`` for a ValidationError, as one line."""
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)
