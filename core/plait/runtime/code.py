"""The workflow's source tree as a content-addressed archive, so a pod runs the user's code
without an image rebuilt for it.

The engine packs the folder a task's module is imported from (its *source root*) into a
gzip'd tar whose bytes depend only on the files' paths, contents and executable bits (no
times, no owners), stores it in the blob store under its SHA-256 and hands its URI to the
pod; the pod fetches it once per digest, unpacks it and imports from it. Packing the same
tree twice gives the same digest, so a version's code is uploaded once, not per attempt.

What is packed: the source files under the root (``.py`` and the small text files code reads
next to itself: JSON, YAML, TOML, SQL, notebooks, ...), skipping hidden folders, virtual
environments, ``__pycache__`` and ``node_modules``. Data belongs in the blob store, not here: a
tree over :data:`MAX_BYTES` is refused with a message saying so.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from plait.model.errors import PlaitError

SUFFIXES = frozenset({".py", ".pyi", ".json", ".yaml", ".yml", ".toml", ".txt", ".sql", ".ipynb",
                      ".cfg", ".ini", ".md", ".j2", ".jinja", ".sh"})
"""The files packed: code, and the small text files code reads next to itself."""

SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})

MAX_BYTES = int(os.environ.get("PLAIT_CODE_MAX_MB", "100")) * 1024 * 1024
"""The largest source tree packed (``PLAIT_CODE_MAX_MB``, default 100)."""


def source_root(module: str, file: str | None) -> Path | None:
    """The folder ``module`` (defined in ``file``) is imported from, or None when there is
    nothing to ship: no file, or a module installed in this environment (the image has it)."""
    if not file:
        return None
    path = Path(file).resolve()
    for prefix in {sys.prefix, sys.base_prefix}:
        if path.is_relative_to(Path(prefix).resolve()):
            return None
    root = path.parent
    if module not in ("__main__", "__plait_main__"):
        depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
        for _ in range(depth):
            root = root.parent
    while (root / "__init__.py").exists() and root.parent != root:  # a script inside a package
        root = root.parent  # imports its siblings through the package: ship the package whole
    return root


def _files(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS
                         and not (here / d / "pyvenv.cfg").exists())
        for name in sorted(names):
            path = here / name
            if path.suffix in SUFFIXES and not name.startswith(".") and path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    return found


def fingerprint(root: Path) -> str:
    """A cheap digest of the tree's file list, sizes and modification times (no reading)."""
    h = hashlib.sha256()
    for rel, path in _files(root):
        st = path.stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def pack(root: Path) -> bytes:
    """The tree under ``root`` as a reproducible ``.tar.gz``; PlaitError when it is too large."""
    files = _files(root)
    total = sum(path.stat().st_size for _, path in files)
    if total > MAX_BYTES:
        biggest = sorted(files, key=lambda f: f[1].stat().st_size, reverse=True)[:3]
        raise PlaitError(
            f"the source tree {root} is {total / 2**20:.0f} MB of code and text files, over the "
            f"{MAX_BYTES / 2**20:.0f} MB a task's code archive may hold (the largest: "
            f"{', '.join(rel for rel, _ in biggest)}); keep data in the blob store, or raise "
            "PLAIT_CODE_MAX_MB")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, path in files:
            info = tarfile.TarInfo(rel)
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


@dataclass(frozen=True)
class Archive:
    """A packed source tree: its root on this machine, its bytes and their SHA-256."""

    root: Path
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


_packed: dict[Path, tuple[str, Archive]] = {}
_lock = threading.Lock()


def archive(root: Path) -> Archive:
    """The archive of ``root``, packed again only when a file in it changed."""
    mark = fingerprint(root)
    with _lock:
        known = _packed.get(root)
        if known is not None and known[0] == mark:
            return known[1]
    packed = Archive(root, pack(root))
    with _lock:
        _packed[root] = (mark, packed)
    return packed


def unpack(data: bytes, digest: str, cache: Path | None = None) -> Path:
    """Unpack an archive once per digest under ``cache``; return the folder to import from.

    The digest is checked first, so a corrupt or substituted archive never runs.
    """
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise PlaitError(f"the code archive's SHA-256 is {actual}, not the {digest} it is stored "
                         "under: the blob store returned other bytes; register the code again")
    base = cache or Path(os.environ.get("PLAIT_CODE_CACHE") or Path(tempfile.gettempdir()) / "plait-code")
    target = base / digest
    if target.is_dir():
        return target
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=base))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        os.replace(staging, target)  # another process may have won: its copy is the same
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
