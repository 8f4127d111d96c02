"""The workflow the launch form's tests register: one input of every kind the form draws.

``describe`` returns what it was given, as text, so a test reads back through the API what the
form sent (the uploaded file's content included).
"""

from __future__ import annotations

import datetime as dt
import enum
import json

import plait
from plait import File


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@plait.task
def describe(count: int, ratio: float, name: str, loud: bool, day: dt.date, at: dt.datetime, colour: Colour,
             sizes: list[int], data: File, note: str | None) -> str:
    return json.dumps({"count": count, "ratio": ratio, "name": name, "loud": loud, "day": day.isoformat(),
                       "at": at.isoformat(), "colour": colour.value, "sizes": sizes, "data": data.read_text(),
                       "note": note})


@plait.workflow
def every_kind(count: int, ratio: float, name: str, loud: bool, day: dt.date, at: dt.datetime, colour: Colour,
               sizes: list[int], data: File, note: str | None = None) -> str:
    """One input of each kind a launch form draws."""
    return describe(count=count, ratio=ratio, name=name, loud=loud, day=day, at=at, colour=colour, sizes=sizes,
                    data=data, note=note)


weekly = plait.LaunchPlan(every_kind, name="weekly", default_inputs={"count": 7, "colour": Colour.GREEN},
                          fixed_inputs={"ratio": 0.5})
