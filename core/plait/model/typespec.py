"""Type specs: how a task input or output is described in the compiled workflow."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class TypeSpec(BaseModel):
    """A type as it appears in a compiled workflow.

    ``kind`` is a built-in kind (``int``, ``list``, ``struct``, ``dataframe``, ...) or a
    plugin's (``spark.dataframe``); ``args`` holds element types, ``fields`` a struct's
    fields, ``values`` an enum's members, ``ref`` the import path of a Python class and
    ``meta`` anything else a transformer needs.
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    args: tuple[TypeSpec, ...] = ()
    fields: dict[str, TypeSpec] | None = None
    values: tuple[str, ...] | None = None
    ref: str | None = None
    meta: dict[str, Any] = {}

    def describe(self) -> str:
        if self.kind == "optional":
            return f"Optional[{self.args[0].describe()}]"
        if self.kind in ("list", "dict"):
            return f"{self.kind}[{', '.join(a.describe() for a in self.args)}]"
        if self.kind in ("struct", "enum") and self.ref:
            return self.ref.rsplit(".", 1)[-1]
        if self.kind == "dataframe":
            schema = self.meta.get("schema")
            return f"DataFrame[{schema.rsplit('.', 1)[-1]}]" if schema else "DataFrame"
        return self.kind

