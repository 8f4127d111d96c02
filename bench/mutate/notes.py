"""Why each known survivor survives: keyed as the report shows them, without line numbers.

A Python mutant's key is ``Function.name: `before` -> `after```; a Lua mutant's is its name
in lua.py. The report prints the note under the survivor; a survivor without a note is new
and needs a test or a note.
"""

from __future__ import annotations

EQUIVALENT = "Equivalent: "
TO_KILL_TOKENS = "To be killed by test_tokens*.py: "

NOTES: dict[str, str] = {
    "grant loop `used() < capacity` -> `<=`":
        EQUIVALENT + "with used == capacity the free capacity is 0, no request (count >= 1) fits, "
        "so the loop finds no candidate and breaks, as the original loop would not have started.",
}
