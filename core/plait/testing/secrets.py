"""Where a secret's value ended up: files under the plait home, rows of the store, captured text.

A test gives a task a recognisable secret (``f"s3cr3t-{uuid4().hex}"``), runs it through the
real engine, and then calls :func:`assert_secret_nowhere` with the plait home, the store's
URL (when it is not the home's SQLite file) and whatever text the run printed (``plait run``'s
stdout and stderr, ``plait executions show --logs``, ``plait executions events --json``). Each
place the value was found is reported precisely: a file's path and the byte offset, a table,
column and row, the name of a text and the character offset.

Besides the value as given, its JSON-escaped form is looked for (a value with a quote or a
backslash is stored escaped inside a JSON column or file).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class Sighting:
    """One place a secret's value was found."""

    kind: str
    """``file``, ``row`` or ``text``."""
    where: str
    """The file's path, ``table.column`` of the row, or the text's name."""
    detail: str
    """The byte offset in the file, the row's key, or the character offset in the text."""

    def __str__(self) -> str:
        return f"{self.kind} {self.where} ({self.detail})"


def _needles(value: str) -> list[str]:
    if not value:
        raise ValueError("an empty secret cannot be looked for: every text holds it")
    escaped = json.dumps(value)[1:-1]
    return [value] if escaped == value else [value, escaped]


def regular_files(roots: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """Every regular file under ``roots`` (links are not followed) with its bytes, in order."""
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in sorted(names):
                path = os.path.join(folder, name)
                try:
                    if not stat.S_ISREG(os.lstat(path).st_mode):
                        continue
                    with open(path, "rb") as fh:
                        data = fh.read()
                except OSError:  # gone since it was listed
                    continue
                yield path, data


def in_files(value: str, roots: Iterable[Path]) -> list[Sighting]:
    """Every regular file under ``roots`` whose bytes hold the value (links are not followed)."""
    needles = [n.encode() for n in _needles(value)]
    found = []
    for path, data in regular_files(roots):
        for needle in needles:
            offset = data.find(needle)
            if offset >= 0:
                found.append(Sighting("file", path, f"byte {offset}"))
                break
    return found


def _as_text(cell: Any) -> str:
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return bytes(cell).decode("utf-8", "replace")
    if isinstance(cell, (dict, list)):
        return json.dumps(cell)
    return str(cell)


def in_store(value: str, db_url: str) -> list[Sighting]:
    """Every row of every table of the store at ``db_url`` holding the value in a column."""
    needles = _needles(value)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    found = []
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        if not metadata.tables:
            raise AssertionError(f"the store at {engine.url!r} has no tables: is it the store the run used?")
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                keys = [c.name for c in table.primary_key.columns]
                for number, row in enumerate(conn.execute(sa.select(table)).mappings()):
                    for column, cell in row.items():
                        if cell is None:
                            continue
                        text = _as_text(cell)
                        if any(needle in text for needle in needles):
                            key = ", ".join(f"{k}={row[k]!r}" for k in keys) if keys else f"row {number}"
                            found.append(Sighting("row", f"{table.name}.{column}", key))
    finally:
        engine.dispose()
    return found


def in_texts(value: str, texts: Mapping[str, str]) -> list[Sighting]:
    """Every named text (captured output) holding the value."""
    found = []
    for name, text in texts.items():
        for needle in _needles(value):
            offset = text.find(needle)
            if offset >= 0:
                found.append(Sighting("text", name, f"character {offset}"))
                break
    return found


def secret_sightings(value: str, *, home: Path, db_url: str | None = None,
                     texts: Mapping[str, str] | None = None) -> list[Sighting]:
    """Every place under ``home``, in the store and in ``texts`` that holds ``value``.

    ``db_url`` defaults to the home's SQLite store (``<home>/plait.db``), which must exist:
    a check that looked at no store would pass for the wrong reason. Its file, and a ``-wal``
    beside it, are read byte by byte with the rest of the home as well.
    """
    home = Path(home)
    if not home.is_dir():
        raise AssertionError(f"there is no plait home at {home}: the run did not use it")
    if db_url is None:
        db = home / "plait.db"
        if not db.is_file():
            raise AssertionError(f"there is no store at {db}; give db_url= for a store elsewhere")
        db_url = f"sqlite:///{db}"
    return [*in_files(value, [home]), *in_store(value, db_url), *in_texts(value, texts or {})]


@dataclass(frozen=True)
class CliRun:
    """A ``plait run`` in a subprocess and what its execution shows afterwards."""

    execution_id: str
    returncode: int
    texts: dict[str, str]
    """``plait run``'s stdout and stderr, ``executions show --logs`` and ``executions events --json``."""


def plait_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``plait ARGS`` as a user runs it, in a subprocess with this environment plus ``env``."""
    return subprocess.run([sys.executable, "-m", "plait.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


def run_and_show(target: str, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 timeout: float = 300) -> CliRun:
    """``plait run TARGET ARGS``, then ``executions show ID --logs`` and ``executions events ID --json``.

    Every text a user would see of the execution comes back, by name, for
    :func:`assert_secret_nowhere`. ``env`` is added to this process's environment (the
    ``PLAIT_SECRET_<NAME>`` a user exports).
    """
    run = plait_cli("run", target, *args, env=env, cwd=cwd, timeout=timeout)
    match = re.search(r"execution (\d{8}-\d{6}-[0-9a-f]{6})", run.stdout + run.stderr)
    assert match, f"plait run printed no execution id:\n{run.stdout}\n{run.stderr}"
    xid = match.group(1)
    texts = {"plait run stdout": run.stdout, "plait run stderr": run.stderr}
    for name, command in (("executions show --logs", ("show", xid, "--logs")),
                          ("executions events --json", ("events", xid, "--json"))):
        shown = plait_cli("executions", *command, env=env, cwd=cwd, timeout=timeout)
        assert shown.returncode == 0 and shown.stdout.strip(), f"plait {name} failed:\n{shown.stdout}{shown.stderr}"
        texts[name] = shown.stdout + shown.stderr
    return CliRun(xid, run.returncode, texts)


def assert_secret_nowhere(value: str, *, home: Path, db_url: str | None = None,
                          texts: Mapping[str, str] | None = None) -> None:
    """Fail, naming each place, if ``value`` is in a file under ``home``, a row of the store or a text."""
    found = secret_sightings(value, home=home, db_url=db_url, texts=texts)
    assert not found, "the secret's value was found in:\n  " + "\n  ".join(map(str, found))
