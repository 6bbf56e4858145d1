"""Stored ids of member accounts' resources: ``<account>:<natural id>`` (no pydantic here: the command
line's ``analyze`` imports this without the incident models)."""

from __future__ import annotations

import re

_ACCOUNT_PREFIX = re.compile(r"^(\d{12}):")


def account_of(scoped_id: str) -> str | None:
    """The member account a stored id carries (``111122223333:j-1ABC.s-2DEF``), or None: this account's."""
    match = _ACCOUNT_PREFIX.match(scoped_id)
    return match[1] if match else None
