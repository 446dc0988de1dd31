"""Enum members from request text, one way for every enum a caller names (roles, maturities, statuses)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TypeVar

from chalicelib.errors import BadRequest

E = TypeVar("E", bound=Enum)


def parse_member(cls: type[E], value: object, *, what: str, field: str, fold: Callable[[str], str] = str.lower) -> E:
    """The member of ``cls`` whose value is ``value`` with surrounding spaces dropped and its case folded
    by ``fold`` (the case the values are written in); BadRequest naming ``field`` and the accepted values."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        wanted = fold(value.strip())
        for member in cls:
            if member.value == wanted:
                return member
    raise BadRequest(f"unknown {what} {value!r}; expected one of {', '.join(m.value for m in cls)}", field=field)
