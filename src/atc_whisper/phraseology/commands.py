"""The structured meaning of a transmission: a callsign and a tuple of `Command` values.

Generator, parser and evaluation all speak this one representation, so "did the model get the
flight level right" is a plain equality test. Every value is canonical: the spoken forms
"one one eight decimal seven", "118.7" and "one one eight decimal seven zero zero" all become
``"118.700"``.

Canonical representation (``Command(type, value, qualifier)``; ``detail`` is informative only and
is left out of equality and hashing):

============== ======================= ============================= ============================
type           value                   qualifier                     example spoken form
============== ======================= ============================= ============================
climb          ``FL350`` / ``5000ft``  None                          climb flight level three five zero
descend        ``FL080`` / ``3500ft``  None                          descend to three thousand five hundred feet
maintain       ``FL350`` / ``5000ft``  None                          maintain flight level three five zero
climb_via      ``LAMSO2`` (SID)        None                          climb via the lamso two departure (FAA)
descend_via    ``SUGOL6`` (STAR)       None                          descend via the sugol six arrival (FAA)
heading        ``270`` (3 digits)      ``left`` / ``right`` / None   turn left heading two seven zero
speed          ``180`` (knots) or      None                          reduce speed to one eight zero knots;
               ``M0.78`` (Mach)                                      maintain mach decimal seven eight
contact        ``118.700`` (MHz, 3 dp) None (detail: station)        contact london control one one eight decimal seven
monitor        ``121.500``             None (detail: station)        monitor tower one two one decimal five
squawk         ``4521``                None                          squawk four five two one
qnh            ``1013`` (hPa)          None                          qnh one zero one three
altimeter      ``29.92`` (inHg)        None                          altimeter two nine nine two
runway         ``27L`` / ``09``        ``line_up`` / ``takeoff`` /   runway two seven left cleared to land
                                       ``land`` / ``cross`` /        (FAA "position and hold" is
                                       ``hold_short``                ``line_up``)
taxi           ``27L`` (runway) or ""  holding point ``A1`` or None  taxi to holding point alfa one runway two seven left
                                       (detail: route ``B K``)
approach       ``27L``                 ``ils`` / ``visual`` / ...    cleared ils approach runway two seven left
direct         ``LAMSO``               None                          proceed direct lamso
clearance      ``EDDF`` (ICAO)         SID ``LAMSO1G`` or None       cleared to frankfurt via lamso one golf departure;
                                       (FAA ``LAMSO2``)              cleared to kennedy airport via the lamso two departure
pushback       ""                      None                          push back approved
startup        ""                      None                          start up approved
go_around      ""                      None                          go around
hold_position  ""                      None                          hold position
emergency      ``mayday`` / ``pan_pan`` None                         mayday mayday mayday
============== ======================= ============================= ============================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

COMMAND_TYPES: tuple[str, ...] = (
    "climb", "descend", "maintain", "climb_via", "descend_via", "heading", "speed", "contact", "monitor",
    "squawk", "qnh", "altimeter", "runway", "taxi", "approach", "direct", "clearance", "pushback", "startup",
    "go_around", "hold_position", "emergency",
)
RUNWAY_CLEARANCES: tuple[str, ...] = ("line_up", "takeoff", "land", "cross", "hold_short")


@functools.total_ordering
@dataclass(frozen=True)
class Command:
    """One ATC instruction (or readback of one) with its canonical value.

    Attributes:
        type: Command kind, one of `COMMAND_TYPES`.
        value: Canonical value (see the module docstring); ``""`` for kinds without one.
        qualifier: What refines the value and changes its meaning (turn direction, runway
            clearance kind, approach type, holding point, SID), or None.
        detail: Informative extra (the station name of a contact, a taxi route); not part of
            equality, so a readback without the station name still matches.
    """

    type: str
    value: str = ""
    qualifier: str | None = None
    detail: str | None = field(default=None, compare=False)

    def __lt__(self, other: object) -> bool:
        # ordering (for stable reports); a missing qualifier sorts first instead of failing on None < str
        if not isinstance(other, Command):
            return NotImplemented
        return (self.type, self.value, self.qualifier or "") < (other.type, other.value, other.qualifier or "")

    def as_dict(self) -> dict[str, str | None]:
        """Return a JSON-ready dict (``type``, ``value``, ``qualifier``, ``detail``)."""
        return {"type": self.type, "value": self.value, "qualifier": self.qualifier, "detail": self.detail}

    def __str__(self) -> str:
        parts = [self.type, self.value] + ([self.qualifier] if self.qualifier else [])
        return ":".join(parts)


@dataclass(frozen=True)
class ParsedTransmission:
    """What a transmission says: who is addressed (or speaking) and which commands.

    Attributes:
        callsign: The callsign in reference form ("speedbird one two three"), or None.
        commands: Commands in the order spoken.
    """

    callsign: str | None
    commands: tuple[Command, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict: ``{"callsign": ..., "commands": [...]}``."""
        return {"callsign": self.callsign, "commands": [c.as_dict() for c in self.commands]}
