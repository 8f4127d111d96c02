"""An attempt's logs: what ``plait executions logs`` and ``plait executions show`` read.

Where an attempt's log is depends on whether it has ended and on its platform (its handle
records which; before it has one, the execution's):

- **Ended**, on any platform: the files named by the attempt's last event (``data.logs``), in
  its folder under ``$PLAIT_HOME/runs/``. On Kubernetes the engine reads the pod's log when the
  pod ends, keeps it there as ``stdout.log`` (the pod's log mixes both streams), then deletes
  the pod: what the platform kept is the only log once an attempt has ended. A task type names
  its own streams there too (a PyTorch attempt's ``rank0.stdout``, ``rank1.stderr``), and things
  that are not log text (papermill's executed notebook, a SageMaker job's page): a path or a
  ``file://`` address of a ``.log`` or ``.txt`` file is read; anything else is a link
  (:class:`LogText` of kind ``link``), listed after the text, never read.
- **Running on Kubernetes**: the pod's log through the API (container ``task``), the pod
  named from the attempt id. Following streams it until the container ends. A map item packed
  into a pod with other items has no pod of its own: the pod it shares is found by its
  ``plait.dev/execution`` and ``plait.dev/node`` labels and an annotation naming the item's
  attempt, and its log holds the other items' output too.
- **Running locally**: a command line's ``stdout.log`` and ``stderr.log`` in its folder (the
  handle's ``workdir``), as they grow. A Python attempt in a worker process keeps its output
  in the worker until it ends: there is nothing to read before, and following waits for the end.

The kubernetes client is imported only when a pod's log is read, so this module imports
without it.
"""

from __future__ import annotations

import codecs
import functools
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from plait.model.errors import InputError, PlaitError
from plait.service.query import escape_like
from plait.storage.events import AttemptState, EventStore, events

ENDED = frozenset({"succeeded", "failed", "timed_out", "aborted", "skipped"})
"""Phases after which an attempt writes nothing more."""

POLL_S = 0.5
"""Seconds between looks at the event store (and a growing file) while following."""

RECORD_GRACE_S = 5.0
"""How long a pod that has gone may take to have its attempt's end recorded: the engine deletes
the pod after keeping its log, then writes the event (events are flushed every 0.2s)."""

Note = Callable[[str], None]


class LogsUnavailableError(PlaitError):
    """The attempt exists but has no log to read (yet, or any more)."""


class NotStartedError(LogsUnavailableError):
    """The node has started no attempt yet: following waits for one (:func:`wait_for_attempt`)."""


@dataclass(frozen=True)
class AttemptRef:
    """One attempt of a node (or of a map item), as its events describe it."""

    execution_id: str
    project: str
    domain: str
    node: str
    index: int | None
    number: int
    phase: str
    platform: str
    handle: dict[str, Any] | None = None
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def entity(self) -> str:
        """The attempt's entity in the event log: its id less the execution's."""
        item = "" if self.index is None else f"[{self.index}]"
        return f"{self.node}{item}/{self.number}"

    @property
    def attempt_id(self) -> str:
        """The id the platform names the attempt's work by (a pod's name comes from it)."""
        return f"{self.execution_id}/{self.entity}"

    @property
    def ended(self) -> bool:
        return self.phase in ENDED

    @property
    def label(self) -> str:
        """``node train attempt 2``, ``item 3 of node detect, attempt 1``: for messages."""
        if self.index is None:
            return f"node {self.node} attempt {self.number}"
        return f"item {self.index} of node {self.node}, attempt {self.number}"


TEXT_SUFFIXES = frozenset({".log", ".txt"})
"""The kept files read as log text; a log link to any other file (a notebook, a report) is a link."""


@dataclass(frozen=True)
class LogText:
    """Some of an attempt's log: ``stream`` is ``stdout``, ``stderr``, ``pod`` (both, mixed), or
    a name its task type gave (``rank1.stderr``: a name ending ``stderr`` is error output).

    Of ``kind`` ``link``, it names something kept that is not log text (``notebook``): ``source``
    is its address, and ``text`` the line ``notebook: ADDRESS``, so a reader that prints text
    alone still says where it is.
    """

    stream: str
    text: str
    source: str
    """Where it was read: a file's path, or ``pod NAMESPACE/NAME``; a link's address."""
    kind: str = "text"


# ---------------------------------------------------------------------------------------
# Finding the attempt
# ---------------------------------------------------------------------------------------


def find_attempt(store: EventStore, execution_id: str, node: str, attempt: int | None = None,
                 item: int | None = None) -> AttemptRef:
    """The attempt of ``node`` (of its map item ``item``) numbered ``attempt``, the latest by default.

    Raises ExecutionNotFoundError for an unknown execution, InputError for an unknown node, item
    or attempt number (naming the ones that exist), and LogsUnavailableError for a node that has
    not run an attempt.
    """
    if attempt is not None and attempt < 1:
        raise InputError(f"attempts are numbered from 1; --attempt {attempt} names none")
    row = store.execution(execution_id)
    xid = row["id"]
    store.flush()
    with store.engine.connect() as conn:
        node_phases = dict(conn.execute(sa.select(events.c.entity, events.c.phase).where(
            events.c.execution_id == xid, events.c.kind == "node").order_by(events.c.seq)).all())
        nodes = set(node_phases)
        platform = _execution_platform(conn, xid)
        like = escape_like(node)
        rows = conn.execute(sa.select(events.c.kind, events.c.entity, events.c.phase, events.c.data).where(
            events.c.execution_id == xid, events.c.kind.in_(("attempt", "item")),
            sa.or_(events.c.entity.like(like + "/%", escape="\\"), events.c.entity.like(like + "[%", escape="\\")),
        ).order_by(events.c.seq)).all()
    if node not in nodes:
        _unknown_node(store, row, node, nodes)
    records: dict[str, dict[str, Any]] = {}
    items: set[int] = set()
    for kind, entity, phase, text in rows:
        data = _json(text)
        if data.get("node") != node:
            continue
        index = data.get("index") if kind == "item" else None
        if index is not None:
            items.add(index)
        if index != item:
            continue
        record = records.setdefault(entity, {"number": data["attempt"], "logs": {}, "handle": None})
        record["phase"] = phase
        record["handle"] = data.get("handle", record["handle"])
        record["logs"] = data.get("logs", record["logs"])
    if item is None and not records and items:
        failed = _failed_items(rows, node)
        hint = f"; items that failed: {_numbers(failed)}" if failed else ""
        raise InputError(f"node {node} is a map over items 0 to {max(items)}; choose one with --item I{hint}")
    if item is not None and not records:
        if not items:
            raise InputError(f"node {node} is not a map, so it has no item {item}; leave out --item")
        raise InputError(f"node {node} has no item {item} that has started; items that have: "
                         f"{_numbers(sorted(items))}")
    if not records and node_phases[node] not in ENDED and row["phase"] in ("running", "queued"):
        raise NotStartedError(f"node {node} of execution {xid} has started no attempt yet, so it has no log")
    if not records:
        raise LogsUnavailableError(f"node {node} of execution {xid} ran no task attempt "
                                   "(its outputs came from the cache, or it is a sub-workflow or a "
                                   "dynamic node's graph), so it has no log")
    by_number = {r["number"]: r for r in records.values()}
    number = max(by_number) if attempt is None else attempt
    if number not in by_number:
        where = f"item {item} of node {node}" if item is not None else f"node {node}"
        raise InputError(f"{where} has no attempt {attempt}; its attempts: {_numbers(sorted(by_number))}")
    record = by_number[number]
    handle = record["handle"]
    return AttemptRef(xid, row["project"], row["domain"], node, item, number, record["phase"],
                      str((handle or {}).get("platform") or platform), handle, dict(record["logs"]))


def wait_for_attempt(store: EventStore, execution_id: str, node: str, attempt: int | None = None,
                     item: int | None = None, note: Note = lambda _: None, poll_s: float = POLL_S) -> AttemptRef:
    """:func:`find_attempt`, waiting (and telling ``note`` once) while the node has started none."""
    said = False
    while True:
        try:
            return find_attempt(store, execution_id, node, attempt, item)
        except NotStartedError as exc:
            if not said:
                note(f"{exc}; waiting")
                said = True
        time.sleep(poll_s)


def refresh(store: EventStore, ref: AttemptRef) -> AttemptRef:
    """``ref`` as its events describe it now (its phase and logs move on while it runs)."""
    store.flush()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.phase, events.c.data).where(
            events.c.execution_id == ref.execution_id, events.c.entity == ref.entity,
            events.c.kind.in_(("attempt", "item"))).order_by(events.c.seq)).all()
    phase, handle, logs = ref.phase, ref.handle, dict(ref.logs)
    for row_phase, text in rows:
        data = _json(text)
        phase = row_phase
        handle = data.get("handle", handle)
        logs = data.get("logs", logs)
    platform = str((handle or {}).get("platform") or ref.platform)
    return AttemptRef(ref.execution_id, ref.project, ref.domain, ref.node, ref.index, ref.number, phase,
                      platform, handle, logs)


def _unknown_node(store: EventStore, row: dict[str, Any], node: str, started: set[str]) -> None:
    try:
        planned = {n.id for n in store.spec(row["version"]).nodes}
    except Exception:  # a spec that no longer loads must not hide the real answer
        planned = set()
    if node in planned and row["phase"] in ("running", "queued"):
        raise NotStartedError(f"node {node} of execution {row['id']} has not started yet, so it has no log")
    if node in planned:
        raise LogsUnavailableError(f"node {node} of execution {row['id']} never started (the execution "
                                   f"ended {row['phase']} first), so it has no log")
    known = sorted(started | planned)
    raise InputError(f"execution {row['id']} has no node {node!r}; its nodes: {', '.join(known) or 'none yet'}")


def _execution_platform(conn: sa.Connection, execution_id: str) -> str:
    texts = conn.execute(sa.select(events.c.data).where(
        events.c.execution_id == execution_id, events.c.kind == "execution",
        events.c.phase == "running").order_by(events.c.seq)).scalars().all()
    platform = "local"
    for text in texts:  # a resume may name another platform
        platform = str(_json(text).get("platform") or platform)
    return platform


def _failed_items(rows: Any, node: str) -> list[int]:
    """The map items whose latest attempt failed."""
    last: dict[int, str] = {}
    for kind, _entity, phase, text in rows:
        if kind == "item":
            data = _json(text)
            if data.get("node") == node:
                last[data["index"]] = phase
    return sorted(i for i, phase in last.items() if phase in ("failed", "timed_out"))


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _numbers(values: list[int]) -> str:
    shown = ", ".join(str(v) for v in values[:20])
    return shown + (f" and {len(values) - 20} more" if len(values) > 20 else "")


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def read_logs(store: EventStore, ref: AttemptRef, tail: int | None = None,
              note: Note = lambda _: None) -> list[LogText]:
    """The attempt's log as it is now (``tail``: only the last lines of each stream).

    An ended attempt that wrote nothing gives an empty list. Raises LogsUnavailableError when
    there is nothing to read yet (or all it kept is gone); ``note`` is told what a reader
    should know besides (a pod shared by several map items, a kept file that is gone).
    """
    _check_tail(tail)
    for _ in _until_recorded(store, ref):
        ref = refresh(store, ref)
        if ref.ended:
            return _kept(ref, tail, note)
        if ref.platform == "kubernetes":
            pod = _Pod.find(ref, note)
            if pod is None:
                continue  # gone: wait for the attempt's end to be recorded, then read what was kept
            return [LogText("pod", _tail(pod.read(tail), tail), pod.source)]
        folder = (ref.handle or {}).get("workdir")
        if folder:
            return [LogText(stream, _tail(path.read_text(errors="replace"), tail), str(path))
                    for stream, path in _files(Path(folder)) if path.exists()]
        raise LogsUnavailableError(_not_yet(ref) + " (--follow waits for it)")
    raise LogsUnavailableError(f"{ref.label} is {ref.phase}, but its pod is gone and the engine has recorded "
                               "no end for it; `plait executions show` tells whether its engine still runs")


def follow_logs(store: EventStore, ref: AttemptRef, tail: int | None = None,
                note: Note = lambda _: None, poll_s: float = POLL_S) -> Iterator[LogText]:
    """The attempt's log as it is written, until the attempt ends (for a pod: until it ends).

    Before there is anything to read (queued, a pod not started, a Python attempt in a local
    worker) it waits, telling ``note`` once why.
    """
    _check_tail(tail)
    said: set[str] = set()

    def once(text: str) -> None:
        if text not in said:
            said.add(text)
            note(text)

    while True:
        ref = refresh(store, ref)
        if ref.ended:
            yield from _kept(ref, tail, once)
            return
        if ref.platform == "kubernetes":
            pod = _Pod.find(ref, once)
            stream = pod.stream(tail) if pod is not None else None
            if stream is not None:
                yield from stream
                return
        elif (ref.handle or {}).get("workdir"):
            yield from _follow_files(store, ref, tail, poll_s)
            return
        once(_not_yet(ref) + "; waiting")
        time.sleep(poll_s)


def _until_recorded(store: EventStore, ref: AttemptRef) -> Iterator[None]:
    """Iterations of a read: the first at once, then while a vanished pod's end is being recorded."""
    deadline = time.monotonic() + RECORD_GRACE_S
    yield None
    while time.monotonic() < deadline:
        time.sleep(0.1)
        yield None


def _kept(ref: AttemptRef, tail: int | None, note: Note) -> list[LogText]:
    """The ended attempt's log links: its text files read, then its other links; a file that
    is gone is noted, or an error when nothing it kept is left."""
    texts, links, gone = [], [], []
    for stream, link in sorted(ref.logs.items(), key=lambda kv: kv[0] != "stdout"):
        file = _local_file(link)
        if file is not None and not file.exists():
            gone.append(f"its {stream} was kept at {link}, which is gone")
        elif file is not None and file.suffix in TEXT_SUFFIXES:
            texts.append(LogText(stream, _tail(file.read_text(errors="replace"), tail), link))
        else:
            links.append(LogText(stream, f"{stream}: {link}\n", link, kind="link"))
    if gone and not texts and not links:
        raise LogsUnavailableError(
            f"{ref.label} ended ({ref.phase}) and {gone[0]} "
            "(was $PLAIT_HOME's runs/ folder removed, or did the execution run on another machine?)")
    for what in gone:
        note(f"{ref.label} ended ({ref.phase}) and {what}")
    return texts + links


def _local_file(link: str) -> Path | None:
    """The file a log link names on this machine (a path, or a ``file://`` address); None for
    any other address (``https://``, ``s3://``): a link, never read here."""
    parts = urllib.parse.urlsplit(link)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    return None if parts.scheme else Path(link)


def _files(folder: Path) -> list[tuple[str, Path]]:
    return [("stdout", folder / "stdout.log"), ("stderr", folder / "stderr.log")]


def _follow_files(store: EventStore, ref: AttemptRef, tail: int | None, poll_s: float) -> Iterator[LogText]:
    """A local command line's files as they grow, until its attempt's end is recorded."""
    assert ref.handle is not None
    offsets: dict[str, int] = {}
    decoders = {stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in ("stdout", "stderr")}
    while True:
        ended = refresh(store, ref).ended  # read before the files: what they hold then is all there is
        for stream, path in _files(Path(ref.handle["workdir"])):
            if not path.exists():
                continue
            with open(path, "rb") as fh:
                if stream not in offsets:
                    text = fh.read().decode("utf-8", "replace")
                    offsets[stream] = fh.tell()
                    chunk = _tail(text, tail)
                else:
                    fh.seek(offsets[stream])
                    data = fh.read()
                    offsets[stream] += len(data)
                    chunk = decoders[stream].decode(data, final=ended)
            if chunk:
                yield LogText(stream, chunk, str(path))
        if ended:
            return
        time.sleep(poll_s)


def _not_yet(ref: AttemptRef) -> str:
    if ref.handle is None:
        return f"{ref.label} is {ref.phase} and has not started, so it has no log yet"
    if ref.platform == "kubernetes":
        return f"{ref.label}'s pod has not started its container, so it has no log yet"
    return (f"{ref.label} runs in a local worker process, which keeps its output until the attempt ends; "
            "there is no log yet")


def _check_tail(tail: int | None) -> None:
    if tail is not None and tail < 0:
        raise InputError(f"--tail counts lines to show from the end; {tail} is not a count")


def _tail(text: str, lines: int | None) -> str:
    if lines is None:
        return text
    return "".join(text.splitlines(keepends=True)[-lines:]) if lines else ""


# ---------------------------------------------------------------------------------------
# A running attempt's pod
# ---------------------------------------------------------------------------------------


class _Pod:
    """The pod a running attempt's log is read from, through the API."""

    def __init__(self, objects: Any, namespace: str, name: str, shared: bool) -> None:
        self.objects = objects
        self.namespace = namespace
        self.name = name
        self.shared = shared

    @property
    def source(self) -> str:
        return f"pod {self.namespace}/{self.name}"

    @classmethod
    def find(cls, ref: AttemptRef, note: Note) -> _Pod | None:
        """The attempt's own pod, or the pod a packed map item shares; None if there is none."""
        from plait.platforms.kubernetes.errors import KubernetesConfigError
        from plait.platforms.kubernetes.names import object_name
        from plait.platforms.kubernetes.objects import POD

        try:
            config, objects = _cluster()
        except KubernetesConfigError as exc:
            raise LogsUnavailableError(f"{ref.label} runs on the kubernetes platform; reading its pod's log "
                                       f"needs that platform's configuration, as `plait run` had it: {exc}") from None
        namespace = config.namespace(ref.project, ref.domain)
        name = object_name(ref.attempt_id)
        if objects.get(POD, namespace, name) is not None:
            return cls(objects, namespace, name, shared=False)
        if ref.index is None:
            return None
        shared = _packed_pod(objects, namespace, ref)
        if shared is None:
            return None
        pod = cls(objects, namespace, shared, shared=True)
        note(f"{ref.label} shares {pod.source} with other items of the map; its log holds theirs too")
        return pod

    def read(self, tail: int | None) -> str:
        from plait.platforms.kubernetes.pods import CONTAINER

        return str(self._request(lambda: self.objects.logs(self.namespace, self.name, CONTAINER, tail_lines=tail)))

    def stream(self, tail: int | None) -> Iterator[LogText] | None:
        """The log as the container writes it, to its end; None while the container has not started."""
        from plait.platforms.kubernetes.errors import KubernetesAPIError
        from plait.platforms.kubernetes.pods import CONTAINER

        try:
            response = self.objects.logs(self.namespace, self.name, CONTAINER, tail_lines=tail, follow=True)
        except KubernetesAPIError as exc:
            if exc.code in (400, 404):  # not started yet, or gone: the caller looks again
                return None
            raise
        return self._chunks(response)

    def _chunks(self, response: Any) -> Iterator[LogText]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for data in response.stream(decode_content=True):
                text = decoder.decode(data)
                if text:
                    yield LogText("pod", text, self.source)
            rest = decoder.decode(b"", final=True)
            if rest:
                yield LogText("pod", rest, self.source)
        finally:
            response.release_conn()

    def _request(self, call: Callable[[], Any]) -> Any:
        from plait.platforms.kubernetes.errors import KubernetesAPIError

        try:
            return call()
        except KubernetesAPIError as exc:
            if exc.code == 400:  # the API's answer while the container waits to start
                raise LogsUnavailableError(f"{self.source} has not started its container, so there is "
                                           f"no log yet (--follow waits for it): {exc}") from None
            raise


@functools.lru_cache(maxsize=1)
def _cluster() -> tuple[Any, Any]:
    """The kubernetes platform's configuration (from the environment) and one API connection to it."""
    from plait.platforms.kubernetes.config import KubernetesConfig
    from plait.platforms.kubernetes.objects import KubernetesObjects, connect

    config = KubernetesConfig.from_env()
    return config, KubernetesObjects(connect(config))


def _packed_pod(objects: Any, namespace: str, ref: AttemptRef) -> str | None:
    """The pod that runs ``ref`` among other map items: labelled with the execution and node, and
    naming the item's attempt id in one of its ``plait.dev/`` annotations."""
    from plait.platforms.kubernetes.names import EXECUTION_LABEL, LABEL_PREFIX, label_value
    from plait.platforms.kubernetes.objects import POD

    selector = f"{EXECUTION_LABEL}={label_value(ref.execution_id)},{LABEL_PREFIX}node={label_value(ref.node)}"
    pods, _ = objects.list_objects(POD, namespace, selector)
    for pod in pods:
        meta = pod.get("metadata") or {}
        notes = meta.get("annotations") or {}
        if any(key.startswith(LABEL_PREFIX) and _names(value, ref.attempt_id) for key, value in notes.items()):
            return str(meta["name"])
    return None


def _names(value: Any, attempt_id: str) -> bool:
    """Whether an annotation's value names ``attempt_id``: itself, or in a JSON list or a comma list."""
    text = str(value)
    if text == attempt_id:
        return True
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list):
        return attempt_id in [str(v) for v in parsed]
    return attempt_id in [part.strip() for part in text.split(",")]


# ---------------------------------------------------------------------------------------
# Links, for `plait executions show`
# ---------------------------------------------------------------------------------------


def log_links(attempt: AttemptState, project: str, domain: str, execution_id: str) -> dict[str, str]:
    """Where ``attempt``'s log is: its kept files; while it runs, its files or its pod.

    A pod is named ``pod NAMESPACE/NAME``, or ``pod NAME`` when this process lacks the
    kubernetes platform's configuration to say its namespace. Empty when there is none yet.
    """
    if attempt.logs:
        return dict(attempt.logs)
    if attempt.phase in ENDED or attempt.handle is None:
        return {}
    if attempt.handle.get("platform") == "kubernetes":
        from plait.platforms.kubernetes.config import KubernetesConfig
        from plait.platforms.kubernetes.names import object_name

        name = object_name(f"{execution_id}/{attempt.attempt_id}")
        try:
            name = f"{KubernetesConfig.from_env().namespace(project, domain)}/{name}"
        except PlaitError:
            pass
        return {"pod": name}
    folder = attempt.handle.get("workdir")
    if folder:
        return {stream: str(path) for stream, path in _files(Path(folder)) if path.exists()}
    return {}
