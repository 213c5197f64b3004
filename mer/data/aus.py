"""Action units (FACS) parsed from the many ways data sets write them, to one canonical form.

Accepted tokens, joined by ``+`` (or ``,``/``;``/spaces): ``4``, ``AU4``, ``L12`` / ``R14``
(side), ``12B`` (intensity A-E), ``(5)`` (uncertain / optional, as SAMM and CASME II mark it),
a suffix in parentheses (as 4DME writes them): ``AU4(L)`` (side), ``AU12(B)`` (intensity), any
other (``AU12(1)``, ``AU4(?)``) read as the AU without it; and their combinations such as
``AU4+L10`` or ``1+2+(5)``. Empty cells, ``/``, ``-`` and ``none`` mean no AU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN = re.compile(
    r"^(?P<open>\()?\s*(?:AU)?\s*(?P<side>[LRlr])?\s*(?:AU)?(?P<number>\d{1,2})(?P<intensity>[A-Ea-e])?"
    r"(?:\((?P<suffix>[^()]{1,8})\))?\s*(?P<close>\))?$",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"[+,;\s]+")
_EMPTY = {"", "/", "-", "none", "nan", "n/a", "na"}


class AUParseError(ValueError):
    """A token that is not an action unit; the message names where it was read."""


@dataclass(frozen=True, order=True)
class ActionUnit:
    number: int
    side: str | None = None  # "L" or "R" for unilateral AUs
    intensity: str | None = None  # FACS intensity "A".."E"
    uncertain: bool = False  # written in parentheses

    def __str__(self) -> str:
        text = f"{self.side or ''}{self.number}{self.intensity or ''}"
        return f"({text})" if self.uncertain else text


def _sort_key(au: ActionUnit) -> tuple:
    return (au.number, au.side or "", au.intensity or "", au.uncertain)


def parse_aus(text: object, where: str = "") -> tuple[ActionUnit, ...]:
    """Parse an AU cell to a sorted tuple of :class:`ActionUnit`.

    ``where`` (e.g. ``"CASME2-coding.xlsx, row 14"``) prefixes the error message.
    """
    if text is None:
        return ()
    if isinstance(text, float):
        if text != text:  # NaN: an empty spreadsheet cell
            return ()
        if text.is_integer():
            text = int(text)
    raw = str(text).strip()
    if raw.lower() in _EMPTY:
        return ()
    units: set[ActionUnit] = set()
    for token in _SPLIT.split(raw):
        if not token:
            continue
        match = _TOKEN.match(token.strip())
        if (
            match is None
            or bool(match["open"]) != bool(match["close"])
            or int(match["number"]) == 0
            or (match["side"] and _suffix_side(match))  # L12(R): which side?
            or (match["intensity"] and _suffix_intensity(match))  # 12B(C): which intensity?
        ):
            prefix = f"{where}: " if where else ""
            raise AUParseError(
                f"{prefix}{token!r} in AU cell {raw!r} is not an action unit (expected e.g. 4, AU4, L12, AU12(L), 12B, (5))"
            )
        side = match["side"] or _suffix_side(match)
        intensity = match["intensity"] or _suffix_intensity(match)
        units.add(
            ActionUnit(
                number=int(match["number"]),
                side=side.upper() if side else None,
                intensity=intensity.upper() if intensity else None,
                uncertain=bool(match["open"]),
            )
        )
    return tuple(sorted(units, key=_sort_key))


def _suffix_side(match: re.Match) -> str | None:
    suffix = (match["suffix"] or "").strip()
    return suffix if suffix.upper() in ("L", "R") else None


def _suffix_intensity(match: re.Match) -> str | None:
    suffix = (match["suffix"] or "").strip()
    return suffix if suffix.upper() in ("A", "B", "C", "D", "E") else None


def format_aus(units: Iterable[ActionUnit]) -> str:
    """Canonical string of a set of AUs, e.g. ``1+2+L12B+(5)`` -> ``1+2+(5)+L12B``; ``""`` for none."""
    return "+".join(str(u) for u in sorted(units, key=_sort_key))


def au_numbers(units: Iterable[ActionUnit]) -> frozenset[int]:
    """The AU numbers regardless of side and intensity: ``L12+R14`` -> ``{12, 14}``."""
    return frozenset(u.number for u in units)


def au_code(number: int) -> str:
    """The name of AU ``number`` in result tables: ``AU04``, two digits, as OpenFace and py-feat write it."""
    return f"AU{int(number):02d}"
