"""The code archive (plait.runtime.code): what a pod imports the user's code from."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from plait.model.errors import PlaitError
from plait.runtime import code


def tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "wf.py").write_text("X = 1\n")
    (root / "pkg" / "query.sql").write_text("select 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "data.parquet").write_bytes(b"\0" * 100)  # data: not code, not packed
    (root / ".git").mkdir()
    (root / ".git" / "config.toml").write_text("secret = 1\n")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "wf.py").write_text("stale\n")
    (root / "venv").mkdir()
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "venv" / "lib.py").write_text("installed\n")
    return root


def names(data: bytes) -> dict[str, int]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m.mode for m in tar.getmembers()}


def test_the_archive_holds_code_and_text_files_and_skips_data_hidden_folders_caches_and_venvs(tmp_path: Path):
    packed = names(code.pack(tree(tmp_path / "src")))
    assert sorted(packed) == ["pkg/__init__.py", "pkg/query.sql", "pkg/sub/__init__.py", "pkg/sub/wf.py", "run.sh"]
    assert packed["run.sh"] == 0o755 and packed["pkg/sub/wf.py"] == 0o644


def test_the_same_tree_gives_the_same_bytes_whatever_the_files_times(tmp_path: Path):
    root = tree(tmp_path / "src")
    first = code.pack(root)
    os.utime(root / "pkg" / "sub" / "wf.py", (1, 1))
    assert code.pack(root) == first
    (root / "pkg" / "sub" / "wf.py").write_text("X = 2\n")
    assert code.pack(root) != first


def test_archive_packs_again_only_when_a_file_changed(tmp_path: Path):
    root = tree(tmp_path / "src")
    first = code.archive(root)
    assert code.archive(root) is first
    (root / "pkg" / "new.py").write_text("Y = 1\n")
    second = code.archive(root)
    assert second is not first and "pkg/new.py" in names(second.data)
    assert second.digest == hashlib.sha256(second.data).hexdigest()


def test_a_tree_too_large_is_refused_naming_its_largest_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tree(tmp_path / "src")
    (root / "big.json").write_text("x" * 5000)
    monkeypatch.setattr(code, "MAX_BYTES", 4000)
    with pytest.raises(PlaitError, match=r"over the 0 MB.*the largest: big.json.*PLAIT_CODE_MAX_MB"):
        code.pack(root)


def test_unpack_checks_the_digest_and_unpacks_once(tmp_path: Path):
    data = code.pack(tree(tmp_path / "src"))
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(PlaitError, match="returned other bytes"):
        code.unpack(data + b"x", digest, tmp_path / "cache")
    target = code.unpack(data, digest, tmp_path / "cache")
    assert (target / "pkg" / "sub" / "wf.py").read_text() == "X = 1\n"
    (target / "marker").write_text("kept")
    assert code.unpack(data, digest, tmp_path / "cache") == target and (target / "marker").exists()


def test_source_root_is_where_the_module_is_imported_from(tmp_path: Path):
    root = tree(tmp_path / "src")
    wf = str(root / "pkg" / "sub" / "wf.py")
    assert code.source_root("pkg.sub.wf", wf) == root
    assert code.source_root("pkg", str(root / "pkg" / "__init__.py")) == root
    assert code.source_root("wf", wf) == root  # a script inside a package ships the package whole
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "flows.py").write_text("")
    assert code.source_root("__main__", str(tmp_path / "flat" / "flows.py")) == tmp_path / "flat"
    assert code.source_root("json", None) is None
    assert code.source_root("pytest", pytest.__file__) is None  # installed: the image has it
