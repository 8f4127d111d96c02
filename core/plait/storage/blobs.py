"""The blob store: where files, directories, data frames and large values live.

Any fsspec URL works: a local folder by default, ``s3://bucket/prefix`` through s3fs,
``gs://bucket/prefix`` through gcsfs. Offloaded values are content-addressed
(``cas/<sha256>``), so the same data written twice is stored once and cache keys built from
references are stable across runs.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import posixpath
import shutil
from pathlib import Path
from typing import Any

from plait.model.errors import PlaitError

_CHUNK = 1 << 20


class BlobStore:
    """A folder of blobs at ``url``; cheap to pickle (the filesystem is opened lazily)."""

    def __init__(self, url: str) -> None:
        if "://" not in url:
            url = "file://" + str(Path(url).expanduser().resolve())
        self.url = url.rstrip("/")
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "_fs": None}

    def __repr__(self) -> str:
        return f"BlobStore({self.url!r})"

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec  # here, not at the top: a run whose values all stay inline never needs it

            protocol = self.url.split("://", 1)[0]
            try:
                self._fs = fsspec.filesystem(protocol)
            except (ImportError, ValueError) as exc:
                extra = {"s3": "plait[s3] (s3fs)", "gs": "plait[gcs] (gcsfs)"}.get(protocol, protocol)
                raise PlaitError(
                    f"blob store {self.url!r} needs the {protocol!r} filesystem: pip install {extra}"
                ) from exc
        return self._fs

    def uri(self, *parts: str) -> str:
        return "/".join([self.url, *(p.strip("/") for p in parts)])

    def inside(self, uri: str) -> str | None:
        """The path of ``uri`` in this store's filesystem if ``uri`` names something inside the
        store (no ``..`` or ``.`` segment, no empty one climbing out); None otherwise. What a
        server reads for a caller goes through this, so an address given as input cannot name
        the server's own files."""
        if not uri.startswith(self.url + "/"):
            return None
        rest = uri[len(self.url) + 1:]
        if not rest or any(part in ("", ".", "..") for part in rest.split("/")):
            return None
        return self._path(uri)

    def _path(self, uri: str) -> str:
        # fsspec's local filesystem wants paths, remote ones accept the URL as is.
        return uri[len("file://"):] if uri.startswith("file://") else uri

    # -- content-addressed values --------------------------------------------------------

    def put_bytes(self, data: bytes, suffix: str = "") -> str:
        """Store ``data`` under its hash and return its URI."""
        digest = hashlib.sha256(data).hexdigest()
        uri = self.uri("cas", digest[:2], digest + suffix)
        if not self.fs.exists(self._path(uri)):
            self.write_bytes(uri, data)
        return uri

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store a local file under the hash of its content and return its URI."""
        digest = _hash_file(Path(path))
        uri = self.uri("cas", digest[:2], digest, Path(path).name)
        if not self.fs.exists(self._path(uri)):
            self._makedirs(uri)
            self.fs.put_file(str(path), self._path(uri))
        return uri

    def put_dir(self, path: str | os.PathLike[str]) -> str:
        """Store a local directory under the hash of its files and return its URI."""
        root = Path(path)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        h = hashlib.sha256()
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0" + _hash_file(f).encode())
        digest = h.hexdigest()
        uri = self.uri("cas", digest[:2], digest + ".dir")
        marker = uri + "/.complete"
        if not self.fs.exists(self._path(marker)):
            for f in files:
                target = uri + "/" + str(f.relative_to(root))
                self._makedirs(target)
                self.fs.put_file(str(f), self._path(target))
            self.write_bytes(marker, b"")
        return uri

    # -- plain reads and writes ----------------------------------------------------------

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``uri`` so that a reader sees the old bytes or the new, never half: a folder
        gets a temporary file renamed over it; an object store's PUT is atomic already (one
        request, where a copy and a delete would make three)."""
        if not uri.startswith("file://"):
            self.fs.pipe_file(self._path(uri), data)
            return
        self._makedirs(uri)
        tmp = uri + ".tmp-" + os.urandom(4).hex()
        with self.fs.open(self._path(tmp), "wb") as fh:
            fh.write(data)
        self.fs.mv(self._path(tmp), self._path(uri))

    def read_bytes(self, uri: str) -> bytes:
        data = self.read_if_exists(uri)
        if data is None:
            raise PlaitError(f"blob {uri} is missing from the blob store")
        return data

    def read_if_exists(self, uri: str) -> bytes | None:
        """The blob's bytes, or None when there is none (one request on an object store)."""
        try:
            data: bytes = self.fs.cat_file(self._path(uri))
            return data
        except FileNotFoundError:
            return None

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self._path(uri)))

    def get_file(self, uri: str, local: str | os.PathLike[str]) -> Path:
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        if uri.startswith("file://"):
            shutil.copyfile(self._path(uri), local)
        else:
            self.fs.get_file(self._path(uri), str(local))
        return local

    def get_dir(self, uri: str, local: str | os.PathLike[str]) -> Path:
        local = Path(local)
        local.mkdir(parents=True, exist_ok=True)
        base = self.fs._strip_protocol(self._path(uri)).rstrip("/")
        for remote in self.fs.find(base):
            rel = posixpath.relpath(self.fs._strip_protocol(remote), base)
            if rel == ".complete":
                continue
            target = local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(target))
        return local

    def list(self, prefix: str) -> builtins.list[str]:
        """The URIs of the blobs whose URI starts with ``prefix``, at any depth, sorted: a
        folder's (``.../k8s/name/``) or those whose names begin alike (``.../error-``), as an
        object store lists by prefix; none when nothing matches."""
        path = self._path(prefix)
        start = self.fs._strip_protocol(path)
        if path.endswith("/") and not start.endswith("/"):
            start += "/"  # a folder's blobs, not a sibling's whose name begins alike
        try:
            found = self.fs.find(start.rpartition("/")[0])
        except FileNotFoundError:
            return []
        scheme = self.url.split("://", 1)[0]
        names = (self.fs._strip_protocol(p) for p in found)
        return sorted(f"{scheme}://{name}" for name in names if name.startswith(start))

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def _makedirs(self, uri: str) -> None:
        if uri.startswith("file://"):
            Path(self._path(uri)).parent.mkdir(parents=True, exist_ok=True)


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
