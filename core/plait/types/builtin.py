"""The built-in value types, registered through the public ``plait_types`` hook.

Scalars, dates, enums, Optional, lists, dicts, dataclasses and pydantic models travel inline
as JSON; ``File``, ``Directory`` and data frames (pandas, pyarrow; Parquet) by reference.
A pandera-annotated data frame is validated on every encode and decode.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import io
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from plait.hookspecs import hookimpl
from plait.model.errors import PlaitError, TypeMismatchError
from plait.model.typespec import TypeSpec
from plait.types.engine import (
    Codec,
    TypeEngine,
    TypeTransformer,
    ValueIO,
    load_offloaded,
    optional_arg,
)
from plait.types.files import Directory, File


def _check(expected: type | tuple[type, ...], name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in _as_tuple(expected)):
            raise TypeMismatchError(f"expected {name}, got {type(value).__name__} {value!r:.80}")

    return check


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


class Scalars(TypeTransformer):
    name = "scalars"
    kinds = ("int", "float", "bool", "str", "bytes", "none", "datetime", "date", "timedelta")

    def matches(self, tp: Any) -> bool:
        return tp in (int, float, bool, str, bytes, type(None), None, dt.datetime, dt.date, dt.timedelta)

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        kind = {type(None): "none", None: "none"}.get(tp) or tp.__name__
        return TypeSpec(kind=kind)

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        if tp is int:
            check = _check(int, "int")
            return _passthrough(check), int
        if tp is float:
            check = _check((int, float), "float")
            return (lambda v: (check(v), float(v))[1]), float
        if tp is bool:
            return _passthrough(_check(bool, "bool")), bool
        if tp is str:
            return _passthrough(_check(str, "str")), str
        if tp in (type(None), None):
            def enc_none(v: Any) -> None:
                if v is not None:
                    raise TypeMismatchError(f"expected None, got {v!r:.80}")
            return enc_none, lambda lit: None
        if tp is bytes:
            check = _check(bytes, "bytes")
            return (lambda v: (check(v), base64.b64encode(v).decode())[1]), base64.b64decode
        if tp is dt.datetime:
            check = _check(dt.datetime, "datetime")
            return (lambda v: (check(v), v.isoformat())[1]), dt.datetime.fromisoformat
        if tp is dt.date:
            def enc_date(v: Any) -> str:
                if not isinstance(v, dt.date) or isinstance(v, dt.datetime):
                    raise TypeMismatchError(f"expected date, got {type(v).__name__}")
                return v.isoformat()
            return enc_date, dt.date.fromisoformat
        check = _check(dt.timedelta, "timedelta")
        return (lambda v: (check(v), v.total_seconds())[1]), lambda s: dt.timedelta(seconds=s)

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return src.kind == dst.kind


def _passthrough(check: Callable[[Any], None]) -> Callable[[Any], Any]:
    def encode(v: Any) -> Any:
        check(v)
        return v

    return encode


class Enums(TypeTransformer):
    name = "enum"
    kinds = ("enum",)

    def matches(self, tp: Any) -> bool:
        return isinstance(tp, type) and issubclass(tp, enum.Enum)

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        return TypeSpec(kind="enum", ref=f"{tp.__module__}.{tp.__qualname__}",
                        values=tuple(str(m.value) for m in tp))

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        def encode(v: Any) -> Any:
            if not isinstance(v, tp):
                try:
                    v = tp(v)
                except ValueError:
                    raise TypeMismatchError(
                        f"expected one of {[m.value for m in tp]} ({tp.__name__}), got {v!r:.80}"
                    ) from None
            return v.value

        return encode, tp

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return src.ref == dst.ref or set(src.values or ()) <= set(dst.values or ())


class Optionals(TypeTransformer):
    name = "optional"
    kinds = ("optional",)

    def matches(self, tp: Any) -> bool:
        return optional_arg(tp) is not None

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        return TypeSpec(kind="optional", args=(engine.spec(optional_arg(tp)),))

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        enc, dec = engine.codec(optional_arg(tp), vio)
        return (lambda v: None if v is None else enc(v)), (lambda lit: None if lit is None else dec(lit))

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return engine.castable(src.args[0], dst.args[0])


class Lists(TypeTransformer):
    name = "list"
    kinds = ("list",)

    def matches(self, tp: Any) -> bool:
        return typing.get_origin(tp) is list and len(typing.get_args(tp)) == 1

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        return TypeSpec(kind="list", args=(engine.spec(typing.get_args(tp)[0]),))

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        enc, dec = engine.codec(typing.get_args(tp)[0], vio)

        def encode(v: Any) -> list[Any]:
            if not isinstance(v, (list, tuple)):
                raise TypeMismatchError(f"expected a list, got {type(v).__name__}")
            try:
                return [enc(x) for x in v]
            except TypeMismatchError as exc:
                raise TypeMismatchError(f"list item: {exc}") from None

        def decode(lit: list[Any]) -> list[Any]:
            # The engine builds lists (a map's results) of values that were each offloaded
            # to the blob store on their own if large: unwrap those references here.
            return [dec(load_offloaded(x, vio) if type(x) is dict and "$ref" in x else x) for x in lit]

        return encode, decode

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return engine.castable(src.args[0], dst.args[0])


class Dicts(TypeTransformer):
    name = "dict"
    kinds = ("dict",)

    def matches(self, tp: Any) -> bool:
        return typing.get_origin(tp) is dict and len(typing.get_args(tp)) == 2

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        key, value = typing.get_args(tp)
        if key not in (str, int):
            raise TypeMismatchError(f"dict keys must be str or int to travel as JSON, not {key!r}")
        return TypeSpec(kind="dict", args=(engine.spec(key), engine.spec(value)))

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        key, value = typing.get_args(tp)
        enc, dec = engine.codec(value, vio)

        def encode(v: Any) -> dict[str, Any]:
            if not isinstance(v, dict):
                raise TypeMismatchError(f"expected a dict, got {type(v).__name__}")
            for k in v:
                if not isinstance(k, key) or isinstance(k, bool):
                    raise TypeMismatchError(f"expected {key.__name__} keys, got {type(k).__name__} {k!r:.40}")
            return {str(k): enc(x) for k, x in v.items()}

        return encode, lambda lit: {key(k): dec(x) for k, x in lit.items()}

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return src.args[0] == dst.args[0] and engine.castable(src.args[1], dst.args[1])


def _struct_fields(tp: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return {f.name: hints[f.name] for f in dataclasses.fields(tp)}
    return {name: f.annotation for name, f in tp.model_fields.items()}


class Structs(TypeTransformer):
    """Dataclasses and pydantic models, field by field (so a nested File travels too)."""

    name = "struct"
    kinds = ("struct",)

    def matches(self, tp: Any) -> bool:
        return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or issubclass(tp, BaseModel))

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        fields = {n: engine.spec(t) for n, t in _struct_fields(tp).items()}
        return TypeSpec(kind="struct", ref=f"{tp.__module__}.{tp.__qualname__}", fields=fields)

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        codecs = {n: engine.codec(t, vio) for n, t in _struct_fields(tp).items()}

        def encode(v: Any) -> dict[str, Any]:
            if isinstance(v, dict):
                try:
                    v = tp(**v)
                except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
                    raise TypeMismatchError(
                        f"expected {tp.__name__}, got a dict that does not fit it: {exc}") from None
            if not isinstance(v, tp):
                raise TypeMismatchError(f"expected {tp.__name__}, got {type(v).__name__}")
            return {n: c[0](getattr(v, n)) for n, c in codecs.items()}

        def decode(lit: dict[str, Any]) -> Any:
            return tp(**{n: c[1](lit[n]) for n, c in codecs.items() if n in lit})

        return encode, decode

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        if src.ref == dst.ref:
            return True
        sf, df = src.fields or {}, dst.fields or {}
        return sf.keys() == df.keys() and all(engine.castable(sf[k], df[k]) for k in sf)


class Files(TypeTransformer):
    name = "file"
    kinds = ("file", "directory")

    def matches(self, tp: Any) -> bool:
        return tp in (File, Directory)

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        return TypeSpec(kind="file" if tp is File else "directory")

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        def encode(v: Any) -> dict[str, str]:
            if isinstance(v, str):
                v = tp(v)
            if not isinstance(v, tp):
                raise TypeMismatchError(f"expected {tp.__name__}, got {type(v).__name__}")
            if v.uri is not None and v._path is None:
                return {"uri": v.uri}
            blobs = vio.require_blobs()
            if not v.path.exists():
                raise TypeMismatchError(f"{tp.__name__} {str(v.path)!r} does not exist")
            return {"uri": blobs.put_file(v.path) if tp is File else blobs.put_dir(v.path)}

        def decode(lit: dict[str, str]) -> Any:
            return tp(uri=lit["uri"], blobs=vio.blobs, scratch=vio.scratch)

        return encode, decode

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return src.kind == dst.kind


def _is_pandera(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is not None and getattr(origin, "__module__", "").startswith("pandera")


class DataFrames(TypeTransformer):
    """pandas DataFrames and pyarrow Tables as Parquet; interchangeable with each other.

    ``pandera.typing.DataFrame[Schema]`` is validated against ``Schema`` on every encode and
    decode (needs ``plait[pandera]``).
    """

    name = "dataframe"
    kinds = ("dataframe",)

    def matches(self, tp: Any) -> bool:
        if _is_pandera(tp):
            return True
        module = getattr(tp, "__module__", "") or ""
        if module.startswith("pandas") and getattr(tp, "__name__", "") == "DataFrame":
            return True
        return module.startswith("pyarrow") and getattr(tp, "__name__", "") == "Table"

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        if _is_pandera(tp):
            schema = typing.get_args(tp)[0]
            return TypeSpec(kind="dataframe", meta={
                "library": "pandas", "schema": f"{schema.__module__}.{schema.__qualname__}"})
        library = "pyarrow" if tp.__module__.startswith("pyarrow") else "pandas"
        return TypeSpec(kind="dataframe", meta={"library": library})

    def codec(self, tp: Any, engine: TypeEngine, vio: ValueIO) -> Codec:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = typing.get_args(tp)[0] if _is_pandera(tp) else None
        want_arrow = getattr(tp, "__module__", "").startswith("pyarrow")

        def encode(v: Any) -> dict[str, Any]:
            import pandas as pd

            if isinstance(v, pd.DataFrame):
                if schema is not None:
                    v = _validate(schema, v, vio.where)
                table = pa.Table.from_pandas(v, preserve_index=not isinstance(v.index, pd.RangeIndex))
            elif isinstance(v, pa.Table):
                table = v
            else:
                raise TypeMismatchError(f"expected a data frame, got {type(v).__name__}")
            sink = io.BytesIO()
            pq.write_table(table, sink)
            uri = vio.require_blobs().put_bytes(sink.getvalue(), ".parquet")
            return {"uri": uri, "format": "parquet", "rows": table.num_rows}

        def decode(lit: dict[str, Any]) -> Any:
            table = pq.read_table(io.BytesIO(vio.require_blobs().read_bytes(lit["uri"])))
            if want_arrow:
                return table
            df = table.to_pandas()
            return _validate(schema, df, vio.where) if schema is not None else df

        return encode, decode

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        return True  # any frame converts to any other; schemas are checked on the data


class DataValidationError(PlaitError):
    """A data frame failed its pandera schema."""


def _validate(schema: Any, df: Any, where: str) -> Any:
    import pandera.errors

    try:
        return schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        problems = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            examples = ", ".join(repr(x) for x in group["failure_case"].head(3))
            problems.append(f"column {column!r} failed {check} (e.g. {examples})")
        raise DataValidationError(
            f"{where}: data frame does not match schema {schema.__name__}: " + "; ".join(problems)
        ) from None


@hookimpl
def plait_types(register: Callable[[TypeTransformer], None]) -> None:
    for transformer in (Scalars(), Enums(), Optionals(), Lists(), Dicts(), Structs(), Files(),
                        DataFrames()):
        register(transformer)
