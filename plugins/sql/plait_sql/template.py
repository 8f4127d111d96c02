"""Query templates over a task's typed inputs.

``{{inputs.x}}`` in a query stands for input ``x``:

- a scalar (int, float, str, bool, date, datetime, or Optional of one) becomes a query
  parameter bound by the warehouse, so a value can never change the statement;
- a data frame becomes the name of a table the task type loads it into for the query;
- a :class:`plait_sql.Table` becomes that table's name, checked to be plain identifiers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plait import CompileError
from plait.sdk import TaskTemplate, TypeSpec

from plait_sql.table import Table

PLACEHOLDER = re.compile(r"\{\{\s*inputs\.(\w+)\s*\}\}")
SCALARS = ("int", "float", "str", "bool", "date", "datetime")
TABLE_REF = f"{Table.__module__}.{Table.__qualname__}"


def role(spec: TypeSpec) -> str | None:
    """How an input of this type enters a query: parameter, frame or table (None: it cannot)."""
    if spec.kind == "optional":
        spec = spec.args[0]
    if spec.kind in SCALARS:
        return "parameter"
    if spec.kind == "dataframe":
        return "frame"
    if spec.kind == "struct" and spec.ref == TABLE_REF:
        return "table"
    return None


def check_template(task: TaskTemplate, query: str) -> None:
    """Reject, at compile time, a query naming an input the task lacks or cannot bind."""
    inputs = task.interface.inputs
    for name in PLACEHOLDER.findall(query):
        if name not in inputs:
            known = ", ".join(sorted(inputs)) or "none"
            raise CompileError(f"query task {task.name!r}: the query uses {{{{inputs.{name}}}}}, "
                               f"but the task has no input {name!r} (inputs: {known})")
        if role(inputs[name]) is None:
            raise CompileError(
                f"query task {task.name!r}: input {name!r} is {inputs[name].describe()}, which a query "
                f"cannot take; use a scalar ({', '.join(SCALARS)}), a data frame or plait_sql.Table")
    stray = re.sub(PLACEHOLDER, "", query)
    if "{{" in stray:
        at = stray.index("{{")
        raise CompileError(f"query task {task.name!r}: cannot read the placeholder near "
                           f"{stray[at:at + 30]!r}; write {{{{inputs.NAME}}}}")


@dataclass(frozen=True)
class Parameter:
    """One bound value: its input's name, plait kind (``int``, ``date``, ...) and Python value."""

    name: str
    kind: str
    value: Any


@dataclass(frozen=True)
class Rendered:
    """A template made concrete: SQL with placeholders, values to bind, frames to load."""

    sql: str
    parameters: list[Parameter]
    frames: dict[str, str]
    """Input name -> the table name the query reads it as."""


def render(task: TaskTemplate, query: str, literals: dict[str, Any], *,
           placeholder: Callable[[Parameter, int], str],
           frame_table: Callable[[str], str],
           table_name: Callable[[Table], str]) -> Rendered:
    """Replace each ``{{inputs.x}}``: ``placeholder(parameter, position)`` gives the marker the
    warehouse binds, ``frame_table(input)`` the table a frame is loaded into, and
    ``table_name(table)`` how a Table is written in this dialect."""
    parameters: list[Parameter] = []
    frames: dict[str, str] = {}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        spec = task.interface.inputs[name]
        kind = role(spec)
        literal = literals.get(name)
        if kind == "frame":
            frames[name] = frame_table(name)
            return frames[name]
        if kind == "table":
            table = Table(**literal) if literal is not None else Table("checked_at_compile_time")
            table.parts()
            return table_name(table)
        scalar = spec.args[0].kind if spec.kind == "optional" else spec.kind
        parameter = Parameter(name, scalar, _value(scalar, literal))
        parameters.append(parameter)
        return placeholder(parameter, len(parameters))

    return Rendered(PLACEHOLDER.sub(substitute, query), parameters, frames)


def _value(kind: str, literal: Any) -> Any:
    if literal is None:
        return None
    if kind == "date":
        return dt.date.fromisoformat(literal)
    if kind == "datetime":
        return dt.datetime.fromisoformat(literal)
    return literal
