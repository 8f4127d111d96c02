"""Launching what was registered: a launch plan or a workflow version, by name, without its code.

:func:`launch_registered` reads the registered bodies (:mod:`plait.model.registered`) from the
:class:`~plait.storage.entities.EntityStore`, merges the launch plan's default inputs (a
launch may override them) and fixed inputs (it may not), checks and encodes the given inputs
against the workflow's *typed interface as compiled* (no user code is imported: the server
never runs registered code in its own process), and queues the execution with its code
archive in the queue options, for an engine to claim. Relaunching and recovering start a new
execution from what an earlier one was launched with.

An ``execution_id`` that exists already makes the launch a no-op returning it: the scheduler
derives ids from (launch plan, version, fire time), so two schedulers firing the same time
start one execution.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from plait.engine.execution import new_execution_id
from plait.engine.prior import RECOVERABLE
from plait.model.errors import EntityNotFoundError, InputError, PlaitError
from plait.model.events import Event
from plait.model.registered import LaunchPlanSpec, RegisteredWorkflow
from plait.model.spec import WorkflowSpec
from plait.model.status import Phase
from plait.model.typespec import TypeSpec
from plait.service.query import execution_tags_of
from plait.storage.blobs import BlobStore
from plait.storage.entities import EntityStore, active_launch_plans
from plait.storage.events import EventStore, Origin, executions
from plait.storage.queue import ExecutionQueue

LAUNCH_KEY = "launch"
"""The key of the queued event's data that records how an execution was launched."""


@dataclass(frozen=True)
class Launched:
    """What an execution was launched from, as its queued event records it."""

    launch_plan: str | None
    launch_plan_version: str | None
    workflow: str
    workflow_version: str
    inputs: dict[str, Any]
    options: dict[str, Any]


def launch_registered(store: EventStore, blobs: BlobStore | None, project: str, domain: str, *,
                      launch_plan: str | None = None, workflow: str | None = None, version: str | None = None,
                      inputs: dict[str, Any] | None = None, launched_by: str | None = None,
                      execution_id: str | None = None, fire_time: dt.datetime | float | None = None,
                      tags: Iterable[str] = (), platform: str = "local",
                      text_inputs: dict[str, str] | None = None) -> str:
    """Queue an execution of a registered launch plan (or workflow) version; returns its id.

    ``version`` None: the launch plan's active version (the latest registered if none is
    active), or the workflow's latest version. ``inputs`` are Python values or their JSON
    literals, checked against the workflow's interface. ``fire_time``: a schedule's fire time,
    passed into the launch plan's ``fire_time_input``. An ``execution_id`` that exists already
    is not launched again: its id is returned. ``blobs`` is not read yet: file inputs are given
    by their URI in the blob store (a local path is refused), never uploaded here.
    """
    if (launch_plan is None) == (workflow is None):
        raise InputError("launch either a launch plan or a workflow (one of them, by name)")
    if execution_id is not None and _exists(store, execution_id):
        return execution_id
    entities = EntityStore(store)
    plan: LaunchPlanSpec | None = None
    plan_version: str | None = None
    if launch_plan is not None:
        plan_version = version or _active_version(entities, project, domain, launch_plan)
        plan = LaunchPlanSpec.model_validate(_body(entities, project, domain, "launch_plan", launch_plan, plan_version))
        workflow, version = plan.workflow, plan.workflow_version
    assert workflow is not None
    version = version or _latest_version(entities, project, domain, "workflow", workflow)
    registered = RegisteredWorkflow.model_validate(_body(entities, project, domain, "workflow", workflow, version))
    spec = WorkflowSpec.model_validate(registered.spec)
    given = dict(inputs or {})
    where = f"workflow {workflow!r} version {version!r}"
    for name, raw in (text_inputs or {}).items():  # typed on a command line: read as plait run reads it
        if name not in spec.inputs:
            flags = ", ".join("--" + n.replace("_", "-") for n in spec.inputs) or "none"
            raise InputError(f"{where} has no input --{name.replace('_', '-')}; its inputs are {flags}")
        given[name] = parse_text(raw, spec.inputs[name], f"--{name.replace('_', '-')}")
    if plan is not None:
        fixed = sorted(set(given) & set(plan.fixed_inputs))
        if fixed:
            raise InputError(f"launch plan {plan.name!r} fixes input {fixed[0]!r} to "
                             f"{plan.fixed_inputs[fixed[0]]!r}; a launch cannot change it (register a launch "
                             f"plan without it fixed to vary it)")
        if fire_time is not None and plan.schedule is not None and plan.schedule.fire_time_input:
            name = plan.schedule.fire_time_input
            given[name] = fire_time_value(fire_time, plan.schedule.timezone, spec.inputs.get(name))
    literals = encode_for_spec(spec, given, where)
    if plan is not None:
        literals = {**plan.default_inputs, **literals, **plan.fixed_inputs}
    literals = {**spec.defaults, **literals}
    missing = [n for n in spec.inputs if n not in literals]
    if missing:
        raise InputError(f"workflow {workflow!r} needs input {missing[0]!r} ({spec.inputs[missing[0]].describe()}); "
                         f"give it as --{missing[0].replace('_', '-')} VALUE (or in the launch's inputs)")
    options: dict[str, Any] = {"platform": platform, "fail_fast": True}
    if registered.code is not None:
        options["code"] = registered.code.model_dump()
    if plan is not None and plan.max_parallelism is not None:
        options["max_parallelism"] = plan.max_parallelism
    launched = Launched(launch_plan, plan_version, workflow, version, literals, options)
    return enqueue_launched(store, project, domain, spec, launched, Origin(launch_plan, launched_by, (*tags, *label_tags(plan))),
                            execution_id)


def enqueue_launched(store: EventStore, project: str, domain: str, spec: WorkflowSpec, launched: Launched,
                     origin: Origin, execution_id: str | None = None, note: dict[str, Any] | None = None) -> str:
    """Queue ``launched`` as a new execution, recording how it was launched in a ``queued``
    event (what relaunch and recover read); an existing ``execution_id`` is returned as is."""
    xid = execution_id or new_execution_id()
    record = {"launch_plan": launched.launch_plan, "launch_plan_version": launched.launch_plan_version,
              "workflow": launched.workflow, "workflow_version": launched.workflow_version,
              "options": launched.options, **(note or {})}
    queued = Event(xid, "execution", "", Phase.QUEUED,
                   {"workflow": spec.name, "version": spec.version, "inputs": launched.inputs, LAUNCH_KEY: record},
                   time.time())
    try:
        ExecutionQueue(store).enqueue(xid, spec, launched.inputs, launched.options, project, domain, origin=origin,
                                      first_events=[queued])
    except sa.exc.IntegrityError:
        if execution_id is not None and _exists(store, execution_id):
            return execution_id  # launched by someone else just now (another scheduler)
        raise
    return xid


def launched_from(store: EventStore, execution_id: str) -> tuple[dict[str, Any], Launched]:
    """An execution's row and how it was launched (from its queued event); an error for an
    execution that was not launched from a registration (a local run: relaunch it with
    ``plait run``)."""
    row = store.execution(execution_id)
    for event in store.events(row["id"]):
        if event.kind == "execution" and event.phase == Phase.QUEUED and LAUNCH_KEY in event.data:
            record = event.data[LAUNCH_KEY]
            return row, Launched(record.get("launch_plan"), record.get("launch_plan_version"), record["workflow"],
                                 record["workflow_version"], dict(event.data.get("inputs") or {}),
                                 dict(record.get("options") or {}))
    raise PlaitError(f"execution {row['id']} was not launched from a registered workflow (it ran from local code); "
                     f"run the workflow again with `plait run`")


def relaunch(store: EventStore, execution_id: str, *, launched_by: str | None = None,
             inputs: dict[str, Any] | None = None, tags: Iterable[str] = ()) -> str:
    """A new execution of the same registered version with the same inputs (``inputs``
    replaces some of them, checked as at launch: a launch plan's fixed inputs stay fixed),
    tagged with ``tags`` and the launch plan's labels (the original launch's own tags stay its
    own: a relaunch is a launch of its own)."""
    row, launched = launched_from(store, execution_id)
    edits = dict(inputs or {})
    plan = _plan_of(store, row, launched)
    fixed = sorted(set(edits) & set(plan.fixed_inputs)) if plan is not None else []
    if fixed:
        raise InputError(f"launch plan {launched.launch_plan!r} fixes input {fixed[0]!r}; a relaunch "
                         f"cannot change it")
    spec = store.spec(row["version"])
    literals = {**launched.inputs, **encode_for_spec(spec, edits, f"workflow {launched.workflow!r}")}
    again = Launched(launched.launch_plan, launched.launch_plan_version, launched.workflow,
                     launched.workflow_version, literals, launched.options)
    return enqueue_launched(store, row["project"], row["domain"], spec, again,
                            Origin(launched.launch_plan, launched_by, tuple(sorted({*tags, *label_tags(plan)}))),
                            note={"relaunch_of": row["id"]})


def recover(store: EventStore, execution_id: str, *, launched_by: str | None = None) -> str:
    """A new execution of a failed (or aborted) one that reuses every node that succeeded
    there (its recorded outputs) and runs only the rest; it keeps the original's tags."""
    row, launched = launched_from(store, execution_id)
    if row["phase"] not in RECOVERABLE:
        why = ("it succeeded, so nothing is left to run; relaunch it to run it again" if row["phase"] == "succeeded"
               else f"it is {row['phase']} and has not ended; wait for it (or abort it) first")
        raise InputError(f"cannot recover execution {row['id']}: {why}")
    spec = store.spec(row["version"])
    options = {**launched.options, "recover_from": row["id"]}
    again = Launched(launched.launch_plan, launched.launch_plan_version, launched.workflow,
                     launched.workflow_version, launched.inputs, options)
    plan = _plan_of(store, row, launched)
    return enqueue_launched(store, row["project"], row["domain"], spec, again,
                            Origin(launched.launch_plan, launched_by, _carried_tags(store, row, plan)),
                            note={"recover_of": row["id"]})


def _carried_tags(store: EventStore, row: dict[str, Any], plan: LaunchPlanSpec | None) -> tuple[str, ...]:
    """The tags a recovery of ``row`` carries, as the same run carried on: the original's and the
    launch plan's labels as it is registered now; each once."""
    return tuple(sorted({*execution_tags_of(store, row), *label_tags(plan)}))


def _plan_of(store: EventStore, row: dict[str, Any], launched: Launched) -> LaunchPlanSpec | None:
    """The launch plan version an execution was launched from, if any (and still registered)."""
    if launched.launch_plan is None or launched.launch_plan_version is None:
        return None
    found = EntityStore(store).get(row["project"], row["domain"], "launch_plan", launched.launch_plan,
                                   launched.launch_plan_version)
    return LaunchPlanSpec.model_validate(found.body) if found is not None else None


# -- inputs, from the interface as compiled ------------------------------------------------


def encode_for_spec(spec: WorkflowSpec, values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` (Python values or JSON literals) as the literals of ``spec``'s inputs; an
    InputError naming the input for an unknown one or a value of the wrong type."""
    unknown = sorted(set(values) - set(spec.inputs))
    if unknown:
        raise InputError(f"{where} has no input {unknown[0]!r}; its inputs are {', '.join(spec.inputs) or 'none'}")
    return {name: literal_of(value, spec.inputs[name], f"input {name!r} of {where}")
            for name, value in values.items()}


def literal_of(value: Any, tp: TypeSpec, where: str) -> Any:
    """The literal of ``value`` for type ``tp``: what the type engine stores (see
    :mod:`plait.types.builtin`), made from a Python value or checked as a JSON literal.

    Files and directories are given by their URI in the blob store; a local path is refused
    (the machine that runs the execution cannot read it): upload it first.
    """
    def bad(expected: str) -> InputError:
        return InputError(f"{where}: expected {expected}, got {type(value).__name__} {value!r:.80}")

    kind = tp.kind
    if kind == "optional":
        return None if value is None else literal_of(value, tp.args[0], where)
    if kind == "none":
        if value is not None:
            raise bad("None")
        return None
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("a bool")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad("an int")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a float")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a str")
        return value
    if kind == "bytes":
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode()
        if isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise bad("bytes (base64 text)") from None
            return value
        raise bad("bytes (base64 text)")
    if kind in ("datetime", "date"):
        cls = dt.datetime if kind == "datetime" else dt.date
        if isinstance(value, cls) and (kind == "datetime" or not isinstance(value, dt.datetime)):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return cls.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise bad(f"a {kind} (ISO 8601 text)")
    if kind == "timedelta":
        if isinstance(value, dt.timedelta):
            return value.total_seconds()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad("a duration in seconds")
    if kind == "enum":
        raw = getattr(value, "value", value)
        if tp.values is not None and str(raw) not in tp.values:
            raise bad(f"one of {', '.join(tp.values)}")
        return raw
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        return [literal_of(v, tp.args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "dict":
        if not isinstance(value, dict):
            raise bad("a dict")
        return {str(k): literal_of(v, tp.args[1], f"{where}[{k!r}]") for k, v in value.items()}
    if kind == "struct":
        fields = tp.fields or {}
        if not isinstance(value, dict):
            if hasattr(value, "__dict__") or hasattr(value, "model_dump"):
                value = {n: getattr(value, n) for n in fields if hasattr(value, n)}
            else:
                raise bad(f"a {tp.describe()} (a JSON object of its fields)")
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise InputError(f"{where}: {tp.describe()} has no field {unknown[0]!r}; its fields are {', '.join(fields)}")
        return {n: literal_of(v, fields[n], f"{where}.{n}") for n, v in value.items()}
    if kind in ("file", "directory"):
        uri = value.get("uri") if isinstance(value, dict) else getattr(value, "uri", value)
        if not isinstance(uri, str) or "://" not in uri:
            raise InputError(f"{where}: a {kind} is given by its URI in the blob store (s3://..., file://...), "
                             f"not {value!r:.80}; upload a local {kind} first")
        return {"uri": uri}
    if isinstance(value, dict) and "uri" in value:  # a data frame or a plugin's type, as a literal
        return value
    raise InputError(f"{where}: a {tp.describe()} cannot be given at launch; pass its literal "
                     f"(a JSON object with its \"uri\")")


def parse_text(raw: str, tp: TypeSpec, flag: str) -> Any:
    """Command-line text as a value of type ``tp``, as ``plait run`` reads it (see
    :func:`plait.service.inputs.parse_value`): text as is, true/false, numbers, ISO dates, a
    duration in seconds, a file by URI, JSON for the rest."""
    kind = tp.kind
    if kind == "optional":
        return None if raw.lower() in ("none", "null") else parse_text(raw, tp.args[0], flag)
    if kind in ("str", "datetime", "date", "enum", "file", "directory", "bytes"):
        return raw
    if kind == "bool":
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise InputError(f"{flag}: cannot read {raw!r} as bool: expected true or false")
    try:
        if kind == "int":
            return int(raw)
        if kind in ("float", "timedelta"):
            return float(raw)
        return json.loads(raw)
    except ValueError as exc:
        raise InputError(f"{flag}: cannot read {raw!r} as {tp.describe()}: {exc}") from None


def fire_time_value(fire_time: dt.datetime | float, timezone: str, tp: TypeSpec | None) -> dt.datetime | str:
    """A schedule's fire time as its ``fire_time_input`` receives it: an aware datetime in the
    schedule's own ``timezone`` (so a midnight run in Paris gets the Paris date, not the UTC one),
    its ISO 8601 text for a str input. A naive ``fire_time`` is read as UTC."""
    if not isinstance(fire_time, dt.datetime):
        fire_time = dt.datetime.fromtimestamp(fire_time, dt.UTC)
    elif fire_time.tzinfo is None:
        fire_time = fire_time.replace(tzinfo=dt.UTC)
    local = fire_time.astimezone(ZoneInfo(timezone))
    if tp is not None and tp.kind == "optional":
        tp = tp.args[0]
    return local.isoformat() if tp is not None and tp.kind == "str" else local


def label_tags(plan: LaunchPlanSpec | None) -> list[str]:
    """The tags a launch plan's ``labels`` give each execution launched from it: ``key=value``
    (none without a plan)."""
    return [f"{key}={value}" for key, value in sorted(plan.labels.items())] if plan is not None else []


# -- registered entities -----------------------------------------------------------------


def _exists(store: EventStore, execution_id: str) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(executions.c.id).where(executions.c.id == execution_id)).first() is not None


def _body(entities: EntityStore, project: str, domain: str, kind: str, name: str, version: str) -> dict[str, Any]:
    found = entities.get(project, domain, kind, name, version)
    if found is None:
        if not entities.list_versions(project, domain, kind, name, include_archived=True):
            raise _unknown(entities, project, domain, kind, name)
        what = kind.replace("_", " ")
        raise EntityNotFoundError(f"no {what} {name!r} version {version!r} in {project}/{domain}; "
                                  f"`plait register` registers it")
    return found.body


def _latest_version(entities: EntityStore, project: str, domain: str, kind: str, name: str) -> str:
    versions = entities.list_versions(project, domain, kind, name)
    if not versions:
        raise _unknown(entities, project, domain, kind, name)
    return versions[-1].version


SHOWN_NAMES = 10
"""How many registered names an unknown name's error lists."""


def _unknown(entities: EntityStore, project: str, domain: str, kind: str, name: str) -> EntityNotFoundError:
    """The error for a name nothing is registered under: the names that are (the first
    :data:`SHOWN_NAMES`), and the one meant if ``name`` is the last part of a dotted one."""
    what = kind.replace("_", " ")
    names = entities.names(project, domain, kind)
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    known = f"registered: {', '.join(names[:SHOWN_NAMES])}{more}" if names else "none is registered there"
    meant = [n for n in names if n.endswith("." + name)]
    if meant:
        return EntityNotFoundError(f"no {what} {name!r} in {project}/{domain}; did you mean "
                                   f"{' or '.join(repr(n) for n in meant[:3])}? ({known})")
    return EntityNotFoundError(f"no {what} {name!r} in {project}/{domain} ({known}); "
                               f"`plait register` registers it")


def _active_version(entities: EntityStore, project: str, domain: str, name: str) -> str:
    with entities.engine.connect() as conn:
        active = conn.execute(sa.select(active_launch_plans.c.version).where(
            active_launch_plans.c.project == project, active_launch_plans.c.domain == domain,
            active_launch_plans.c.name == name)).scalar()
    return str(active) if active is not None else _latest_version(entities, project, domain, "launch_plan", name)


__all__ = ["Launched", "enqueue_launched", "launch_registered", "launched_from",
           "literal_of", "recover", "relaunch"]
