"""How a node's input or output is shown: a small value as JSON, a file as a download link, a
data frame as its schema and first rows (read from its Parquet, a few rows only), a large
value the engine moved to the blob store as a link to it."""

from __future__ import annotations

import io
import json
from typing import Any

from plait.model.typespec import TypeSpec
from plait.storage.blobs import BlobStore

PREVIEW_ROWS = 20
"""Rows of a data frame shown in its preview."""

SHOWN_CHARS = 4000
"""Characters of a value's JSON shown inline."""

MAX_PREVIEW_BYTES = 64 << 20
"""A Parquet file larger than this is not opened for a preview (it is still downloadable)."""


def shown_value(name: str, spec: TypeSpec | None, value: Any, blobs: BlobStore, url: str) -> dict[str, Any]:
    """What the node panel shows of one value: ``kind`` is scalar, file, frame or ref."""
    shown: dict[str, Any] = {"name": name, "type": spec.describe() if spec else "", "kind": "scalar", "url": url}
    inner = spec.args[0] if spec is not None and spec.kind == "optional" and spec.args else spec
    if isinstance(value, dict) and "$ref" in value and len(value) == 1:
        shown.update(kind="ref", uri=value["$ref"])
    elif inner is not None and inner.kind in ("file", "directory") and isinstance(value, dict) and "uri" in value:
        shown.update(kind="file" if inner.kind == "file" else "directory", uri=value["uri"],
                     local=blobs.inside(str(value["uri"])) is not None)
    elif inner is not None and inner.kind == "dataframe" and isinstance(value, dict) and "uri" in value:
        shown.update(kind="frame", uri=value["uri"], rows=value.get("rows"),
                     local=blobs.inside(str(value["uri"])) is not None, **_preview(blobs, str(value["uri"])))
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
        shown["text"] = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + f"\n… ({len(text):,} characters)"
    return shown


def _preview(blobs: BlobStore, uri: str) -> dict[str, Any]:
    """The data frame's schema and first rows, or why they cannot be shown."""
    import pyarrow.parquet as pq

    try:
        path = blobs.inside(uri)
        if path is None:
            return {"schema": [], "columns": [], "head": [], "note": "it is outside this server's blob store"}
        if blobs.fs.size(path) > MAX_PREVIEW_BYTES:
            data: Any = blobs.fs.open(path, "rb")
        else:
            data = io.BytesIO(blobs.fs.cat_file(path))
        with data:
            reader = pq.ParquetFile(data)
            schema = [(f.name, str(f.type)) for f in reader.schema_arrow]
            batch = next(reader.iter_batches(batch_size=PREVIEW_ROWS), None)
    except Exception as exc:  # a missing or unreadable file: say so in the panel, keep the page
        return {"schema": [], "columns": [], "head": [], "note": f"its preview cannot be read: {exc}"}
    columns = [name for name, _ in schema]
    head = [[_cell(v) for v in row.values()] for row in batch.to_pylist()] if batch is not None else []
    return {"schema": schema, "columns": columns, "head": head, "note": None}


def _cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"
