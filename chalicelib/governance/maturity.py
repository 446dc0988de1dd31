"""Agent maturity: the ladder that decides which approved packages an agent may use."""

from __future__ import annotations

from enum import Enum

from chalicelib.errors import BadRequest


class Maturity(str, Enum):
    """STUDENT < INTERN < SUPERVISED < AUTONOMOUS.

    A ``str`` enum so it serialises as its name in JSON bodies and DynamoDB
    items; the comparison operators are overridden because ``str`` would
    otherwise order the members alphabetically.
    """

    STUDENT = "STUDENT"
    INTERN = "INTERN"
    SUPERVISED = "SUPERVISED"
    AUTONOMOUS = "AUTONOMOUS"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def parse(cls, value: object) -> Maturity:
        """``Maturity`` from a name (case-insensitive, surrounding spaces ignored).

        Raises BadRequest naming the accepted values.
        """
        if isinstance(value, Maturity):
            return value
        if isinstance(value, str):
            member = cls.__members__.get(value.strip().upper())
            if member is not None:
                return member
        raise BadRequest(
            f"unknown maturity {value!r}; expected one of {', '.join(m.value for m in cls)}",
            field="maturity",
        )

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Maturity):
            return NotImplemented
        return self.rank >= other.rank

    def __str__(self) -> str:
        return self.value


_RANKS = {member: rank for rank, member in enumerate(Maturity)}
