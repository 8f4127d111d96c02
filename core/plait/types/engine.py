"""The type engine: Python annotations to type specs, values to literals and back.

A *type spec* (:class:`TypeSpec`) describes a task input or output in the compiled workflow,
so the compiler can check bindings without importing user code. A *literal* is the
JSON-serialisable form of a value: small values inline, files, directories and data frames
as references into the blob store.

Each Python type is handled by a :class:`TypeTransformer`; the built-in ones live in
``plait/types/builtin.py`` and plugins add theirs through the ``plait_types`` hook.
Codecs are compiled once per annotation, so encoding a map of 100,000 ints costs a dict
look-up per item, not a search through the transformers.
"""

from __future__ import annotations

import json
import threading
import types as pytypes
import typing
from collections.abc import Callable
from typing import Any, Union

from plait.model.errors import CompileError, PlaitError, TypeMismatchError
from plait.model.typespec import TypeSpec
from plait.storage.blobs import BlobStore

INLINE_LIMIT = 1 << 20
"""Encoded values larger than this (bytes of JSON) are offloaded to the blob store."""




Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]
"""(encode, decode): value -> literal and literal -> value, for one annotation."""


class TypeTransformer:
    """How plait handles one family of Python types. Subclass and register via ``plait_types``.

    ``name`` identifies the transformer; ``kinds`` lists the spec kinds it produces, so the
    compiler can ask it whether one of its types may be bound to another (``castable``).
    """

    name: str = ""
    kinds: tuple[str, ...] = ()

    def matches(self, tp: Any) -> bool:
        """Return True if this transformer handles the Python type ``tp``."""
        raise NotImplementedError

    def spec(self, tp: Any, engine: TypeEngine) -> TypeSpec:
        """Describe ``tp`` for the compiled spec."""
        raise NotImplementedError

    def codec(self, tp: Any, engine: TypeEngine, io: ValueIO) -> Codec:
        """Return (encode, decode) functions for values of ``tp``."""
        raise NotImplementedError

    def castable(self, src: TypeSpec, dst: TypeSpec, engine: TypeEngine) -> bool:
        """Whether a value of ``src`` may be bound where ``dst`` is expected (same kind family)."""
        return src.model_dump() == dst.model_dump()


class ValueIO:
    """What codecs need at run time: the blob store, a scratch folder, and who is asking."""

    def __init__(self, blobs: BlobStore | None, scratch: str | None = None, where: str = "") -> None:
        self.blobs = blobs
        self.scratch = scratch
        self.where = where

    def require_blobs(self) -> BlobStore:
        if self.blobs is None:
            raise PlaitError(f"{self.where or 'this value'} needs a blob store, and none is configured")
        return self.blobs


def _qualname(tp: Any) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


class TypeEngine:
    """Looks up transformers for annotations and compiles codecs."""

    def __init__(self, transformers: list[TypeTransformer]) -> None:
        # Later registrations win: a plugin may specialise a built-in type.
        self.transformers = list(reversed(transformers))
        self._by_kind: dict[str, TypeTransformer] = {}
        for t in reversed(self.transformers):
            for kind in t.kinds:
                self._by_kind[kind] = t
        self._specs: dict[Any, TypeSpec] = {}

    def transformer_for(self, tp: Any) -> TypeTransformer:
        for t in self.transformers:
            if t.matches(tp):
                return t
        raise CompileError(
            f"plait does not know how to pass values of type {_show(tp)} between tasks. "
            "Use a supported type (int, float, bool, str, bytes, datetime, Enum, Optional, "
            "list, dict, a dataclass or pydantic model, File, Directory, a data frame), or "
            "register a TypeTransformer through the plait_types hook"
        )

    def spec(self, tp: Any) -> TypeSpec:
        try:
            return self._specs[tp]
        except (KeyError, TypeError):
            pass
        result = self.transformer_for(tp).spec(tp, self)
        try:
            self._specs[tp] = result
        except TypeError:
            pass
        return result

    def codec(self, tp: Any, io: ValueIO) -> Codec:
        return self.transformer_for(tp).codec(tp, self, io)

    def castable(self, src: TypeSpec, dst: TypeSpec) -> bool:
        """Whether a value of type ``src`` may be bound to an input of type ``dst``."""
        if src == dst:
            return True
        if dst.kind == "optional":
            return src.kind == "none" or self.castable(
                src.args[0] if src.kind == "optional" else src, dst.args[0]
            )
        if src.kind == "int" and dst.kind == "float":
            return True
        if src.kind != dst.kind:
            return False
        owner = self._by_kind.get(src.kind)
        return owner.castable(src, dst, self) if owner else False


def _show(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


def optional_arg(tp: Any) -> Any | None:
    """If ``tp`` is Optional[X] (or X | None), return X."""
    origin = typing.get_origin(tp)
    if origin is Union or origin is pytypes.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


# -- process-wide engine ---------------------------------------------------------------

_engine: TypeEngine | None = None
_lock = threading.Lock()
_loader: Callable[[], object] | None = None


def set_loader(loader: Callable[[], object]) -> None:
    """Say how to load the plugins when the type engine is first needed.

    The plugin registry sits above the types in the layers, so it is handed in (by the
    ``plait`` package on import) rather than imported from here.
    """
    global _loader
    _loader = loader


def install_transformers(transformers: list[TypeTransformer]) -> None:
    global _engine
    with _lock:
        _engine = TypeEngine(transformers)


def engine() -> TypeEngine:
    """The type engine built from every loaded plugin's transformers."""
    if _engine is None and _loader is not None:
        _loader()
    if _engine is None:
        raise PlaitError("no value types are loaded: import plait (which loads the plugins) before the type engine")
    return _engine


# -- encoding whole interfaces ---------------------------------------------------------


def compile_codecs(annotations: dict[str, Any], io: ValueIO) -> dict[str, Codec]:
    """Codecs for every named annotation; build once and reuse for many values."""
    eng = engine()
    return {name: eng.codec(tp, io) for name, tp in annotations.items()}


def encode_values(
    values: dict[str, Any], annotations: dict[str, Any], io: ValueIO, *, what: str,
    codecs: dict[str, Codec] | None = None,
) -> dict[str, Any]:
    """Encode named values to literals, checking each against its annotation."""
    codecs = codecs or compile_codecs(annotations, io)
    out: dict[str, Any] = {}
    for name in annotations:
        if name not in values:
            raise TypeMismatchError(f"{io.where}: {what} {name!r} is missing")
        encode = codecs[name][0]
        try:
            lit = encode(values[name])
        except TypeMismatchError as exc:
            raise TypeMismatchError(f"{io.where}: {what} {name!r}: {exc}") from None
        out[name] = offload(lit, io)
    return out


def decode_values(
    literals: dict[str, Any], annotations: dict[str, Any], io: ValueIO, *, what: str,
    codecs: dict[str, Codec] | None = None,
) -> dict[str, Any]:
    """Decode named literals to Python values of their annotated types."""
    codecs = codecs or compile_codecs(annotations, io)
    out: dict[str, Any] = {}
    for name in annotations:
        if name not in literals:
            raise TypeMismatchError(f"{io.where}: {what} {name!r} has no value")
        out[name] = codecs[name][1](load_offloaded(literals[name], io))
    return out


def offload(lit: Any, io: ValueIO) -> Any:
    """Move a large literal to the blob store, leaving ``{"$ref": uri}`` in its place."""
    if isinstance(lit, (list, dict, str)) and _size_above(lit, INLINE_LIMIT):
        data = json.dumps(lit, separators=(",", ":")).encode()
        return {"$ref": io.require_blobs().put_bytes(data, ".json")}
    return lit


def load_offloaded(lit: Any, io: ValueIO) -> Any:
    if isinstance(lit, dict) and len(lit) == 1 and "$ref" in lit:
        return json.loads(io.require_blobs().read_bytes(lit["$ref"]))
    return lit


def _size_above(lit: Any, limit: int) -> bool:
    if isinstance(lit, str):
        return len(lit) > limit
    if isinstance(lit, list) and len(lit) < 64 and not any(isinstance(x, (list, dict, str)) for x in lit):
        return False
    return len(json.dumps(lit, separators=(",", ":"))) > limit
