"""The type engine and the built-in value types (see :mod:`plait.types.engine`)."""

from plait.model.typespec import TypeSpec
from plait.types.engine import (
    INLINE_LIMIT,
    Codec,
    TypeEngine,
    TypeTransformer,
    ValueIO,
    compile_codecs,
    decode_values,
    encode_values,
    engine,
    install_transformers,
    load_offloaded,
    offload,
    optional_arg,
)

__all__ = [
    "INLINE_LIMIT", "Codec", "TypeEngine", "TypeSpec", "TypeTransformer", "ValueIO", "compile_codecs",
    "decode_values", "encode_values", "engine", "install_transformers", "load_offloaded", "offload",
    "optional_arg",
]
