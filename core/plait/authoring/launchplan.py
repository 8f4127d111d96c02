"""Launch plans: a workflow with inputs chosen in advance, labels, parallelism and a schedule.

A launch plan is authored next to its workflow and registered with it (``plait register``)::

    nightly = plait.LaunchPlan(
        report, name="reports.nightly",
        default_inputs={"region": "eu"},          # a launch may override these
        fixed_inputs={"currency": "EUR"},          # ... and not these
        schedule=plait.Cron("0 2 * * *", timezone="Europe/Paris", fire_time_input="day"),
    )

Its inputs are checked against the workflow's typed interface when it is defined, so a wrong
type or an unknown input fails at import, naming the launch plan, the input and both types;
they are stored as literals (:class:`plait.model.registered.LaunchPlanSpec`), the form the
queue and the engine use.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from plait.authoring.decorators import Workflow, _signature_types
from plait.model.errors import CompileError, InputError, PlaitError, TypeMismatchError
from plait.model.registered import LaunchPlanSpec, Schedule
from plait.model.schedule_times import check_schedule
from plait.storage.blobs import BlobStore
from plait.types.engine import ValueIO, encode_values, engine, optional_arg

CatchUp = Literal["all", "latest"]

FIRE_TIME_TYPES = (dt.datetime, str)
"""The types an input receiving a schedule's fire time may have (or Optional of them)."""


# -- schedules ---------------------------------------------------------------------------------

def Cron(expression: str, *, timezone: str = "UTC", fire_time_input: str | None = None,  # noqa: N802
         catch_up: CatchUp = "latest", max_catch_up: int = 100) -> Schedule:
    """A schedule firing at the times of a five-field cron ``expression`` read in ``timezone``
    (an IANA name such as ``Europe/Paris``). ``fire_time_input`` names the workflow input that
    receives the fire time; after downtime ``catch_up`` ``all`` starts every missed fire time
    (at most ``max_catch_up``), ``latest`` only the most recent."""
    schedule = _schedule(expression, cron=expression, timezone=timezone, fire_time_input=fire_time_input,
                         catch_up=catch_up, max_catch_up=max_catch_up)
    try:
        check_schedule(schedule)  # the scheduler's own parser: what it cannot fire by is refused here
    except InputError as exc:
        raise CompileError(str(exc)) from None
    return schedule


def FixedRate(*, seconds: float = 0, minutes: float = 0, hours: float = 0,  # noqa: N802
              fire_time_input: str | None = None, catch_up: CatchUp = "latest",
              max_catch_up: int = 100) -> Schedule:
    """A schedule firing every ``hours`` + ``minutes`` + ``seconds``; the other options as :func:`Cron`'s."""
    every = float(seconds) + 60.0 * float(minutes) + 3600.0 * float(hours)
    if every <= 0:
        raise CompileError(f"FixedRate(seconds={seconds}, minutes={minutes}, hours={hours}): the rate must be "
                           "a positive interval, for example FixedRate(minutes=5)")
    return _schedule(f"every {every:g}s", every_s=every, fire_time_input=fire_time_input, catch_up=catch_up,
                     max_catch_up=max_catch_up)


def _schedule(what: str, **fields: Any) -> Schedule:
    try:
        return Schedule(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CompileError(f"schedule {what}: {problems}") from None


# -- launch plans ------------------------------------------------------------------------------


class LaunchPlan:
    """A way to launch ``workflow``: default inputs (overridable at launch), fixed inputs (not),
    ``labels`` (each tags every execution launched from the plan ``key=value``, as a launch's
    tags do), ``max_parallelism`` (nodes at once) and a ``schedule`` (:func:`Cron` or
    :func:`FixedRate`).

    ``name`` defaults to ``<module>.<variable>``, given when ``plait register`` finds the plan in
    its module; a plan named as its workflow replaces the default launch plan registration makes.
    """

    def __init__(self, workflow: Workflow, name: str | None = None, default_inputs: dict[str, Any] | None = None,
                 fixed_inputs: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
                 max_parallelism: int | None = None, schedule: Schedule | None = None) -> None:
        if not isinstance(workflow, Workflow):
            raise CompileError(f"LaunchPlan({name or ''!r}) takes a @workflow, got {workflow!r}")
        self.workflow = workflow
        self.name = name
        self.default_inputs = dict(default_inputs or {})
        self.fixed_inputs = dict(fixed_inputs or {})
        self.labels = dict(labels or {})
        self.max_parallelism = max_parallelism
        self.schedule = schedule
        frame = sys._getframe(1)
        caller = frame.f_globals.get("__name__")
        self.module: str | None = caller if isinstance(caller, str) else None
        """The module it was defined in: ``plait register`` names an unnamed plan after it."""
        self.defined_at = _source_line(frame.f_code.co_filename, frame.f_lineno, self.module)
        """Where ``LaunchPlan(...)`` was called (``pkg/module.py:12``): errors name an unnamed plan by it."""
        self._check()

    def __repr__(self) -> str:
        return f"<plait launch plan {self.name or '(unnamed)'} of {self.workflow.name}>"

    @property
    def where(self) -> str:
        """The plan as errors name it: by its name, else by where it was defined."""
        if self.name:
            return f"launch plan {self.name!r}"
        return f"launch plan at {self.defined_at} (of workflow {self.workflow.name!r})"

    def _check(self) -> None:
        types, defaults, _ = _signature_types(self.workflow.fn, "workflow")
        both = sorted(set(self.default_inputs) & set(self.fixed_inputs))
        if both:
            raise CompileError(f"{self.where}: input {both[0]!r} is both a default and a fixed input; a fixed "
                               "input cannot be overridden, so give it in one of the two")
        for which, values in (("default", self.default_inputs), ("fixed", self.fixed_inputs)):
            for name, value in values.items():
                if name not in types:
                    raise CompileError(f"{self.where}: {which} input {name!r} is not an input of workflow "
                                       f"{self.workflow.name}; its inputs are {', '.join(types) or 'none'}")
                self._encode(which, name, value, types[name], None, checking=True)
        if self.max_parallelism is not None and (not isinstance(self.max_parallelism, int)
                                                 or self.max_parallelism < 1):
            raise CompileError(f"{self.where}: max_parallelism is a number of nodes at once, at least 1, "
                               f"not {self.max_parallelism!r}")
        bad_labels = {k: v for k, v in self.labels.items() if not isinstance(k, str) or not isinstance(v, str)}
        if bad_labels:
            raise CompileError(f"{self.where}: labels map text to text; {bad_labels!r} does not")
        problem = label_problem(self.labels)
        if problem:
            raise CompileError(f"{self.where}: {problem}")
        if self.schedule is None:
            return
        if not isinstance(self.schedule, Schedule):
            raise CompileError(f"{self.where}: schedule= takes plait.Cron(...) or plait.FixedRate(...), "
                               f"not {self.schedule!r}")
        fire = self.schedule.fire_time_input
        if fire is not None:
            if fire not in types:
                raise CompileError(f"{self.where}: the schedule's fire_time_input {fire!r} is not an input of "
                                   f"workflow {self.workflow.name}; its inputs are {', '.join(types) or 'none'}")
            tp = optional_arg(types[fire]) or types[fire]
            if tp not in FIRE_TIME_TYPES:
                raise CompileError(f"{self.where}: the schedule's fire_time_input {fire!r} is of type "
                                   f"{engine().spec(types[fire]).describe()}; the fire time is passed as a "
                                   "datetime or a str, so declare the input as one of those")
            if fire in self.fixed_inputs:
                raise CompileError(f"{self.where}: input {fire!r} receives the fire time, so it cannot also be "
                                   "a fixed input")
        given = set(self.default_inputs) | set(self.fixed_inputs) | set(defaults) | {fire}
        missing = [n for n in types if n not in given]
        if missing:
            raise CompileError(f"{self.where} has a schedule, but nothing gives workflow input {missing[0]!r} a "
                               "value when it fires; add it to default_inputs or fixed_inputs")

    def _encode(self, which: str, name: str, value: Any, tp: Any, blobs: BlobStore | None,
                checking: bool = False) -> Any:
        try:
            return encode_values({name: value}, {name: tp}, ValueIO(blobs, where=self.where), what="input")[name]
        except TypeMismatchError as exc:
            expected = engine().spec(tp).describe()
            detail = str(exc).removeprefix(f"{self.where}: input {name!r}: ")
            detail = "" if detail.startswith("expected ") else f" ({detail})"  # else says where inside
            raise TypeMismatchError(f"{self.where}: {which} input {name!r} expects {expected}, got "
                                    f"{type(value).__name__} {value!r:.60}{detail}") from None
        except PlaitError:
            if not checking:
                raise
            return None  # a value that needs the blob store (a File) is encoded when registered

    def spec(self, workflow_version: str, blobs: BlobStore | None = None) -> LaunchPlanSpec:
        """The plan as registered under a version, its inputs as literals (files go to ``blobs``)."""
        if not self.name:
            raise CompileError(f"{self.where} has no name; pass LaunchPlan(name=...) or define it at the top "
                               "of a module that `plait register` reads")
        types, _, _ = _signature_types(self.workflow.fn, "workflow")

        def literals(which: str, values: dict[str, Any]) -> dict[str, Any]:
            return {n: self._encode(which, n, v, types[n], blobs) for n, v in values.items()}

        return LaunchPlanSpec(name=self.name, workflow=self.workflow.name, workflow_version=workflow_version,
                              default_inputs=literals("default", self.default_inputs),
                              fixed_inputs=literals("fixed", self.fixed_inputs), labels=self.labels,
                              max_parallelism=self.max_parallelism, schedule=self.schedule)


def label_problem(labels: dict[str, str]) -> str | None:
    """What is wrong with ``labels`` as tags (each becomes ``key=value`` on the plan's
    executions), or None."""
    for key, value in labels.items():
        if not key or "=" in key or len(key) + 1 + len(value) > 256:
            return (f"label {key!r}: a label is the tag key=value on its executions, so give a non-empty key "
                    "without '=' and at most 256 characters in all")
    return None


def _source_line(filename: str, line: int, module: str | None) -> str:
    """``filename:line`` as the module's path from its top package (``pkg/module.py:12``), so an
    error reads the same on every machine; the file's own name where the module is not known."""
    path = Path(filename)
    depth = 1
    if module and module != "__main__":
        depth = module.count(".") + 1 + (path.name == "__init__.py")
    return f"{'/'.join(path.parts[-depth:])}:{line}"
