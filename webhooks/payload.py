"""What a webhook body may be before the console parses or stores any of it.

The doors answer 400 for a body that is valid JSON but cannot be stored as it is: nested deeper
than any AWS event (Python's parser would raise ``RecursionError`` near 1,000 levels, and every
later reader would too), or holding a string that PostgreSQL refuses (a NUL character) or that
cannot be encoded (a lone UTF-16 surrogate such as ``\\ud800``). Each check names the field.
"""

from __future__ import annotations

from typing import Any

# AWS events nest about ten levels (a CloudTrail task definition in responseElements); 64 leaves
# room for any of them and stays far below Python's recursion limit.
MAX_DEPTH = 64


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than ``limit``, decided in one pass
    over the characters without parsing (so a 100,000-deep body costs no recursion at all)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def unstorable_string(value: Any) -> str | None:
    """The first string (key or value) that cannot be stored, described with its path, or None.
    Iterative: the depth is bounded by ``too_deep`` already, but a wide body must not recurse."""
    pending: list[tuple[str, Any]] = [("body", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                return f"{path} {problem}"
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _string_problem(key)
                if problem:
                    return f"a key in {path} {problem}"
                pending.append((f"{path}.{key}" if path != "body" else key, child))
        elif isinstance(item, list):
            pending.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate"
    return None
