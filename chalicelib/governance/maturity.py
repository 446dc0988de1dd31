"""Agent maturity: the ladder that decides which approved packages an agent may use."""

from __future__ import annotations

from enum import Enum

from chalicelib.governance.enums import parse_member


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
        return parse_member(cls, value, what="maturity", field="maturity", fold=str.upper)

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
