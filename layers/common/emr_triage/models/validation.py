"""One way to say what is wrong with data that failed validation."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, root: str = "") -> str:
    """``field.path: problem; other.field: problem`` for every error (``root`` names the top level)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or root}: {error['msg']}" for error in exc.errors()
    )
