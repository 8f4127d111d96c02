"""The server's execution list at scale (issue 10): keyset pages under each filter, and launch throughput.

    .venv/bin/python bench/server_list.py                 # 100,000 rows in PostgreSQL, 10,000 in SQLite
    .venv/bin/python bench/server_list.py --pg-rows 20000 --sqlite-rows 2000 --repeats 10   # quicker

For each store: bulk-loads the executions (COPY into PostgreSQL, executemany into SQLite; not
through the API), 70% of them in one tenant (pricing/production) and the rest over three
others. In that tenant every filter's first value covers about half the rows, so the 500th page
(page size 50) of each filter exists on PostgreSQL. Then, per filter:

- EXPLAIN of the list query of its 500th page, asserting an index scan (no Seq Scan on
  executions; on SQLite no SCAN of executions);
- p50 and p95 of the first and the 500th page (on SQLite, the deepest page the data has),
  server side (``plait.service.query.list_executions``) and through ``GET .../executions`` of a
  real ``plait server`` process on a loopback port.

Launch throughput: executions created per second through the API (``POST
.../executions`` of a workflow registered with ``plait register``; the server runs no engine,
so they stay queued), one client after another and four at once; and through
``ExecutionQueue.enqueue`` (what a launch does in the store) for comparison.
Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust), as the tests do.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from common import machine, table
from plait.model.spec import WorkflowSpec
from plait.service.query import ExecutionFilter, encode_cursor, executions_query, list_executions
from plait.storage.events import EventStore, Origin, execution_tags, executions
from plait.storage.queue import ExecutionQueue

PAGE = 50
DEEP = 500
TENANT = ("pricing", "production")
OTHERS = [("pricing", "development"), ("mapping", "production"), ("search", "staging")]
PHASES = ["succeeded", "failed", "running", "queued", "aborted"]
WORKFLOWS = ["pricing.nightly", "pricing.backfill", "pricing.eval", "mapping.tiles", "search.index"]
PLANS = ["nightly", "backfill", "eval", "adhoc", "weekly"]
USERS = ["alice", "bob", "carol", "dan", "schedule"]
PREFIXES = ["nightly-", "backfill-", "eval-", "adhoc-", "weekly-"]
TAGS = ["nightly", "gpu", "eu", "us", "canary"]


LAUNCHABLE = """import plait


@plait.task
def add_one(x: int) -> int:
    return x + 1


@plait.workflow
def bump(x: int = 0) -> int:
    return add_one(x=x)
"""


def pick(rng: random.Random, values: list[str]) -> str:
    """The first value half the time, the others evenly."""
    return values[0] if rng.random() < 0.5 else rng.choice(values[1:])


def make_rows(n: int, seed: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    base = 1_780_000_000.0
    rows, tags = [], []
    for i in range(n):
        project, domain = TENANT if rng.random() < 0.7 else rng.choice(OTHERS)
        created = base + i * 0.25
        xid = f"{pick(rng, PREFIXES)}{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
        rows.append(dict(id=xid, workflow=pick(rng, WORKFLOWS), version="v1", project=project, domain=domain,
                         created=created, phase=pick(rng, PHASES), updated=created + 30,
                         launch_plan=pick(rng, PLANS), launched_by=pick(rng, USERS)))
        mine = {pick(rng, TAGS)} | ({rng.choice(TAGS[1:])} if rng.random() < 0.3 else set())
        if rng.random() < 0.5:
            mine.add("nightly")
        tags += [dict(project=project, domain=domain, tag=t, created=created, execution_id=xid) for t in sorted(mine)]
    return rows, tags


def filters(rows: list[dict[str, Any]]) -> dict[str, ExecutionFilter]:
    mine = sorted(r["created"] for r in rows if (r["project"], r["domain"]) == TENANT)
    t = dict(project=TENANT[0], domain=TENANT[1])
    return {
        "tenant only": ExecutionFilter(**t),
        "phase": ExecutionFilter(**t, phase=PHASES[0]),
        "workflow": ExecutionFilter(**t, workflow=WORKFLOWS[0]),
        "launch plan": ExecutionFilter(**t, launch_plan=PLANS[0]),
        "launched by": ExecutionFilter(**t, launched_by=USERS[0]),
        "name prefix": ExecutionFilter(**t, id_prefix=PREFIXES[0]),
        "tag": ExecutionFilter(**t, tags=(TAGS[0],)),
        "time range": ExecutionFilter(**t, created_after=mine[len(mine) // 10], created_before=mine[-len(mine) // 10]),
        "phase + workflow": ExecutionFilter(**t, phase=PHASES[0], workflow=WORKFLOWS[0]),
    }


def matches(where: ExecutionFilter, row: dict[str, Any], row_tags: set[str]) -> bool:
    return ((row["project"], row["domain"]) == (where.project, where.domain)
            and all(getattr(where, c) in (None, row[c]) for c in ("phase", "workflow", "launch_plan", "launched_by"))
            and (where.id_prefix is None or row["id"].startswith(where.id_prefix))
            and set(where.tags) <= row_tags
            and (where.created_after is None or row["created"] >= where.created_after)
            and (where.created_before is None or row["created"] < where.created_before))


# -- loading --------------------------------------------------------------------------------------


def load(store: EventStore, rows: list[dict[str, Any]], tags: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    if store.engine.dialect.name == "postgresql":
        raw = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            for name, cols, data in (("executions", list(rows[0]), rows), ("execution_tags", list(tags[0]), tags)):
                with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for r in data:
                        copy.write_row([r[c] for c in cols])
            raw.commit()
            cur.execute("ANALYZE executions")
            cur.execute("ANALYZE execution_tags")
            raw.commit()
        finally:
            raw.close()
    else:
        with store.engine.begin() as conn:
            conn.execute(executions.insert(), rows)
            conn.execute(execution_tags.insert(), tags)
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"plait_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


# -- measuring ------------------------------------------------------------------------------------


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1e3


def timed(call: Callable[[], Any], repeats: int) -> tuple[float, float]:
    call()  # warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return percentiles(times)


def explain(store: EventStore, statement: Any) -> str:
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            return "\n".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))


def uses_an_index(store: EventStore, plan: str) -> bool:
    if store.engine.dialect.name == "sqlite":
        return "SCAN executions" not in plan and "USING" in plan
    return "Seq Scan on executions" not in plan and "Index" in plan


class Server:
    """A real ``plait server`` over the store, and an admin key."""

    def __init__(self, url: str, home: Path) -> None:
        self.env = {**os.environ, "PLAIT_DB_URL": url, "PLAIT_HOME": str(home), "PLAIT_BLOB_URL": str(home / "blobs")}
        for name in ("PLAIT_SERVER", "PLAIT_API_KEY"):
            self.env.pop(name, None)
        self.key = subprocess.run([sys.executable, "-m", "plait.cli", "server", "bootstrap"], env=self.env,
                                  capture_output=True, text=True, check=True).stdout.strip()
        home.mkdir(parents=True, exist_ok=True)
        self.log = open(home / "server.log", "ab")  # noqa: SIM115  (open while the server runs)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "plait.cli", "server", "--port", str(self.port),
                                      "--engines", "0"], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}/api/v1",
                                 headers={"Authorization": f"Bearer {self.key}"}, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get("/me").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("plait server did not start")
            time.sleep(0.2)
        for project in {TENANT[0], *(p for p, _ in OTHERS)}:
            self.http.post("/projects", json={"name": project})

    def page(self, where: ExecutionFilter, cursor: str | None) -> None:
        params = {"phase": where.phase, "workflow": where.workflow, "launch_plan": where.launch_plan,
                  "launched_by": where.launched_by, "prefix": where.id_prefix, "tag": list(where.tags) or None,
                  "created_after": where.created_after, "created_before": where.created_before,
                  "limit": PAGE, "cursor": cursor}
        answer = self.http.get(f"/projects/{where.project}/domains/{where.domain}/executions",
                               params={k: v for k, v in params.items() if v is not None})
        answer.raise_for_status()
        assert len(answer.json()["items"]) == PAGE

    def launches_per_second(self, home: Path, count: int, clients: int) -> float:
        """Executions created per second by ``clients`` callers launching a registered workflow."""
        if not (home / "registered").exists():
            source = home / "source"
            source.mkdir(parents=True)
            (source / "launchable.py").write_text(LAUNCHABLE)
            env = {**self.env, "PLAIT_SERVER": f"http://127.0.0.1:{self.port}", "PLAIT_API_KEY": self.key}
            subprocess.run([sys.executable, "-m", "plait.cli", "register", str(source / "launchable.py"),
                            "--project", TENANT[0], "--domain", TENANT[1], "--version", "v1"],
                           env=env, capture_output=True, text=True, check=True, cwd=home)
            (home / "registered").touch()
        path = f"/projects/{TENANT[0]}/domains/{TENANT[1]}/executions"

        def launch(n: int) -> None:
            with httpx.Client(base_url=str(self.http.base_url), headers=dict(self.http.headers), timeout=60) as http:
                for i in range(n):
                    answer = http.post(path, json={"workflow": "launchable.bump", "inputs": {"x": i},
                                                   "tags": ["bench"]})
                    assert answer.status_code == 201, f"{answer.text}; see {home / 'server.log'}"

        launch(3)  # warm
        threads = [threading.Thread(target=launch, args=(count // clients,)) for _ in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return (count // clients * clients) / (time.perf_counter() - started)

    def stop(self) -> None:
        self.http.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()


def bench_store(kind: str, url: str, n: int, repeats: int, home: Path) -> list[list[object]]:
    store = EventStore(url)
    rows, tags = make_rows(n)
    took = load(store, rows, tags)
    print(f"\n## {kind}: {n:,} executions, {len(tags):,} tags, loaded in {took:.1f}s")
    tags_of: dict[str, set[str]] = {}
    for t in tags:
        tags_of.setdefault(t["execution_id"], set()).add(t["tag"])
    server = Server(url, home)
    results = []
    try:
        for name, where in filters(rows).items():
            found = sorted((r for r in rows if matches(where, r, tags_of.get(r["id"], set()))),
                           key=lambda r: (r["created"], r["id"]), reverse=True)
            deep = min(DEEP, len(found) // PAGE)
            last = found[(deep - 1) * PAGE - 1]
            cursor = encode_cursor(last["created"], last["id"])
            plan = explain(store, executions_query(limit=PAGE, cursor=cursor, where=where))
            print(f"\n### {name}: {len(found):,} rows match; EXPLAIN of page {deep}\n{plan}")
            assert uses_an_index(store, plan), f"{kind} {name}: the list query does not use an index:\n{plan}"
            page = list_executions(store, limit=PAGE, cursor=cursor, where=where)
            assert [r["id"] for r in page.items] == [r["id"] for r in found[(deep - 1) * PAGE:deep * PAGE]], name
            q1 = timed(lambda w=where: list_executions(store, limit=PAGE, where=w), repeats)
            qd = timed(lambda w=where, c=cursor: list_executions(store, limit=PAGE, cursor=c, where=w), repeats)
            h1 = timed(lambda w=where: server.page(w, None), repeats)
            hd = timed(lambda w=where, c=cursor: server.page(w, c), repeats)
            results.append([kind, name, f"{len(found):,}", deep,
                            *(f"{p50:.1f} / {p95:.1f}" for p50, p95 in (q1, qd, h1, hd))])
        api = [server.launches_per_second(home, 200, clients) for clients in (1, 4)]
    finally:
        server.stop()
    spec = WorkflowSpec(name="pricing.nightly").with_version()
    queue = ExecutionQueue(store)
    count = 500 if kind == "SQLite" else 1000
    started = time.perf_counter()
    for i in range(count):
        queue.enqueue(f"launch-{i:05d}", spec, {"day": i}, {}, *TENANT,
                      origin=Origin(launch_plan="nightly", launched_by="alice", tags=("nightly",)))
    rate = count / (time.perf_counter() - started)
    print(f"\nlaunch throughput ({kind}): through the API {api[0]:,.0f} executions/s one client at a time, "
          f"{api[1]:,.0f} with four clients; ExecutionQueue.enqueue one after another {rate:,.0f}/s")
    results.append([kind, f"launches/s: API {api[0]:,.0f} (1 client), {api[1]:,.0f} (4 clients); "
                          f"enqueue {rate:,.0f}", "", "", "", "", "", ""])
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-rows", type=int, default=100_000)
    parser.add_argument("--sqlite-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="plait-bench-list-") as folder:
        home = Path(os.environ.get("PLAIT_BENCH_KEEP") or folder)
        with postgres_database() as url:
            results += bench_store("PostgreSQL", url, args.pg_rows, args.repeats, home / "pg")
        results += bench_store("SQLite", f"sqlite:///{home / 'list.db'}", args.sqlite_rows, args.repeats,
                               home / "sqlite")
    print(f"\nexecution list, page size {PAGE}, p50 / p95 ms over {args.repeats} runs, {machine()}")
    print(table(["store", "filter", "rows matching", "deep page", "query: page 1", "query: deep page",
                 "HTTP: page 1", "HTTP: deep page"], results))


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    main()
