"""A reference to a table in a warehouse, as a typed value passed between tasks."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]*$")


@dataclass(frozen=True)
class Table:
    """A warehouse table: what a query task returns when its output is typed ``Table``.

    ``name`` is qualified the way the warehouse spells it (``project.dataset.table`` in
    BigQuery, ``DB.SCHEMA.TABLE`` in Snowflake, ``schema.table`` locally); ``connection``
    says where it lives (``"local"`` for the embedded warehouse). A query task that takes a
    ``Table`` input names it in its SQL with ``{{inputs.x}}``.
    """

    name: str
    connection: str = ""

    def parts(self) -> list[str]:
        """The name's dotted parts, each checked to be a plain identifier."""
        parts = self.name.split(".")
        bad = [p for p in parts if not _PART.match(p)]
        if bad or not 1 <= len(parts) <= 3:
            raise ValueError(f"{self.name!r} is not a table name: expected up to three dot-separated "
                             "identifiers of letters, digits, _, $ and -")
        return parts
