"""``File`` and ``Directory``: values that travel by reference through the blob store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from plait.storage.blobs import BlobStore


def _outside_a_task() -> Path | None:
    return None


_scratch_folder: Callable[[], Path | None] = _outside_a_task


def set_scratch_folder(folder: Callable[[], Path | None]) -> None:
    """Say where a running task's downloads go: the runtime hands in a function that gives the
    running attempt's scratch folder (None outside a task: then a temporary folder). Set once,
    not per attempt; the runtime sits above the types in the layers, so it is handed in."""
    global _scratch_folder
    _scratch_folder = folder


class _Ref:
    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        uri: str | None = None,
        blobs: BlobStore | None = None,
        scratch: str | None = None,
    ) -> None:
        if path is None and uri is None:
            raise ValueError(f"{type(self).__name__} needs a local path or a blob URI")
        self._path = Path(path) if path is not None else None
        self.uri = uri
        self._blobs = blobs
        self._scratch = scratch

    def __repr__(self) -> str:
        where = str(self._path) if self._path is not None else self.uri
        return f"{type(self).__name__}({where!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def _local_target(self) -> Path:
        if self._scratch is None:
            folder = _scratch_folder()
            self._scratch = str(folder) if folder is not None else tempfile.mkdtemp(prefix="plait-")
        base = Path(self._scratch)
        assert self.uri is not None
        return base / "downloads" / self.uri.rsplit("/", 2)[-2] / self.uri.rsplit("/", 1)[-1]

    @property
    def path(self) -> Path:
        """A local path, downloading from the blob store on first use."""
        if self._path is None:
            self._path = self._download()
        return self._path

    def _download(self) -> Path:
        raise NotImplementedError


class File(_Ref):
    """A file. Return ``File("out.csv")`` from a task; receive one and read ``.path``."""

    def _download(self) -> Path:
        assert self.uri is not None and self._blobs is not None
        return self._blobs.get_file(self.uri, self._local_target())

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        return open(self.path, mode, **kwargs)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.path.read_text(encoding)

    @property
    def name(self) -> str:
        if self._path is not None:
            return self._path.name
        assert self.uri is not None
        return self.uri.rsplit("/", 1)[-1]


class Directory(_Ref):
    """A directory of files, uploaded and downloaded as a whole."""

    def _download(self) -> Path:
        assert self.uri is not None and self._blobs is not None
        return self._blobs.get_dir(self.uri, self._local_target())

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*") if p.is_file())
