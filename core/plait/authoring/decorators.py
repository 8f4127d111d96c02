"""The authoring API: ``@task``, ``@workflow``, ``@dynamic`` and ``map``.

A workflow function is traced once: inside it, calling a task records a node and returns
promises of its outputs instead of running it. Outside a workflow a task is a plain Python
function, so user code can be unit-tested without an engine.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from plait.model.errors import CompileError, PlaitError, TypeMismatchError
from plait.model.spec import (
    Binding,
    Interface,
    MapSpec,
    Node,
    PodOptions,
    PythonRef,
    Resources,
    TaskTemplate,
    WorkflowSpec,
)
from plait.model.typespec import TypeSpec
from plait.plugins.tasktype import TaskConfig
from plait.types.engine import ValueIO, engine

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


def _signature_types(fn: Callable[..., Any], what: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Inputs, defaults and outputs of ``fn`` from its annotations."""
    try:
        hints = typing.get_type_hints(fn, include_extras=False)
    except NameError as exc:
        raise CompileError(f"{what} {fn.__qualname__}: cannot resolve an annotation: {exc}") from exc
    sig = inspect.signature(fn)
    inputs: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise CompileError(f"{what} {fn.__qualname__}: *args and **kwargs cannot be typed inputs")
        if name not in hints:
            raise CompileError(
                f"{what} {fn.__qualname__}: input {name!r} has no type annotation; plait needs "
                f"one to check bindings and move the value (e.g. `{name}: int`)"
            )
        inputs[name] = hints[name]
        if param.default is not inspect.Parameter.empty:
            defaults[name] = param.default
    ret = hints.get("return", None)
    return inputs, defaults, _outputs_of(ret)


def _outputs_of(ret: Any) -> dict[str, Any]:
    if ret is None or ret is type(None):
        return {}
    if isinstance(ret, type) and issubclass(ret, tuple) and hasattr(ret, "_fields"):
        return dict(typing.get_type_hints(ret))
    return {"o0": ret}


def _seconds(timeout: float | dt.timedelta | None) -> float | None:
    if isinstance(timeout, dt.timedelta):
        return timeout.total_seconds()
    return None if timeout is None else float(timeout)


# ---------------------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------------------


@dataclass
class _Trace:
    name: str
    nodes: list[Node] = field(default_factory=list)
    tasks: dict[str, TaskTemplate] = field(default_factory=dict)
    subworkflows: dict[str, WorkflowSpec] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def new_id(self, base: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9_-]", "-", base)
        n = self.ids.get(base, 0) + 1
        self.ids[base] = n
        return base if n == 1 else f"{base}-{n}"


_current: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar("plait_trace", default=None)

_run_inline: Callable[..., Any] | None = None
"""How a workflow called as a plain function runs: ``plait.service.run.run_inline``, handed
in by the ``plait`` package on import, because the engine sits above authoring in the layers."""


def set_inline_runner(runner: Callable[..., Any]) -> None:
    """Say how a workflow called outside a workflow body runs (the ``plait`` package does)."""
    global _run_inline
    _run_inline = runner


class Promise:
    """A task output that does not exist yet; pass it to other tasks inside a workflow."""

    def __init__(self, trace: _Trace, node: str, output: str, type: TypeSpec) -> None:
        self._trace = trace
        self.node = node
        self.output = output
        self.type = type

    def __repr__(self) -> str:
        return f"Promise({self.node or 'input'}.{self.output}: {self.type.describe()})"

    def __bool__(self) -> bool:
        raise CompileError(
            f"{self!r} has no value while the workflow is being compiled, so it cannot be used "
            "in an `if` or a loop; branch inside a task, or use @dynamic to build the graph at run time"
        )

    def __iter__(self) -> Any:
        raise CompileError(
            f"cannot iterate over {self!r} while compiling; use plait.map(task, over=...) to "
            "run a task for each item, or @dynamic"
        )


class Outputs:
    """Several promises: unpack them, index them, or reach them by output name (``s.count``)."""

    def __init__(self, promises: dict[str, Promise]) -> None:
        self._promises = promises

    def __getattr__(self, name: str) -> Promise:
        try:
            return self.__dict__["_promises"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(f"no output {name!r}; outputs are {', '.join(self._promises)}") from None

    def __iter__(self) -> Any:
        return iter(self._promises.values())

    def __len__(self) -> int:
        return len(self._promises)

    def __getitem__(self, index: int) -> Promise:
        return list(self._promises.values())[index]


def _bind(value: Any, expected: TypeSpec, tp: Any, where: str) -> Binding:
    """Turn a value passed inside a workflow into a binding, checking its type."""
    eng = engine()
    if isinstance(value, Promise):
        if not eng.castable(value.type, expected):
            raise TypeMismatchError(
                f"{where}: expects {expected.describe()}, but is bound to "
                f"{value.node or 'workflow input'}.{value.output} of type {value.type.describe()}"
            )
        return Binding.promise(value.node, value.output)
    if isinstance(value, (list, tuple)) and any(_has_promise(v) for v in value):
        if expected.kind != "list":
            raise TypeMismatchError(f"{where}: expects {expected.describe()}, but is bound to a list")
        item_tp = typing.get_args(tp)[0] if typing.get_args(tp) else Any
        return Binding(kind="list", items=tuple(
            _bind(v, expected.args[0], item_tp, f"{where}[{i}]") for i, v in enumerate(value)))
    encode, _ = eng.codec(tp, ValueIO(None, where=where))
    try:
        return Binding.constant(encode(value))
    except TypeMismatchError as exc:
        raise TypeMismatchError(f"{where}: {exc}") from None


def _has_promise(value: Any) -> bool:
    return isinstance(value, Promise) or (
        isinstance(value, (list, tuple)) and any(_has_promise(v) for v in value))


# ---------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------


class Task(Generic[R]):
    """A typed unit of work. Create with :func:`task`; call it inside a workflow."""

    def __init__(self, fn: Callable[..., R], *, task_type: str, config: BaseModel | dict[str, Any] | None,
                 name: str | None, retries: int, system_retries: int, timeout: float | None,
                 cache: bool, cache_version: str, resources: Resources, image: str | None,
                 env: dict[str, str], secrets: tuple[str, ...], dynamic: bool = False,
                 pod: PodOptions | None = None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self.task_type = task_type
        self.config = config
        self.inputs, self.defaults, self.outputs = _signature_types(fn, "task")
        self.options: dict[str, Any] = dict(retries=retries, system_retries=system_retries, timeout=timeout,
                            cache=cache, cache_version=cache_version, resources=resources,
                            image=image, env=env, secrets=secrets, dynamic=dynamic, pod=pod or PodOptions())
        self._template: TaskTemplate | None = None
        self.runs_python = True

    def __repr__(self) -> str:
        return f"<plait task {self.name} ({self.task_type})>"

    @property
    def template(self) -> TaskTemplate:
        """The task as it appears in a compiled workflow."""
        if self._template is None:
            eng = engine()
            interface = Interface(
                inputs={n: eng.spec(t) for n, t in self.inputs.items()},
                outputs={n: eng.spec(t) for n, t in self.outputs.items()},
            )
            config = self.config
            if isinstance(config, BaseModel):
                config = config.model_dump(mode="json")
            ref = None
            if self.runs_python:
                try:
                    file = inspect.getsourcefile(self.fn)
                except TypeError:
                    file = None
                ref = PythonRef(module=self.fn.__module__, qualname=self.fn.__qualname__, file=file)
            self._template = TaskTemplate(name=self.name, type=self.task_type, interface=interface,
                                          config=config or {}, ref=ref, **self.options)
        return self._template

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = _current.get()
        if trace is None:
            return self.fn(*args, **kwargs)
        return self._add_node(trace, args, kwargs, kind="task")

    def _bind_args(self, args: tuple[Any, ...], kwargs: dict[str, Any], node_id: str, wf: str) -> dict[str, Any]:
        sig = inspect.signature(self.fn)
        names = list(sig.parameters)
        if len(args) > len(names):
            raise CompileError(f"workflow {wf!r}, node {node_id!r}: {self.name} takes {len(names)} inputs, got {len(args)}")
        bound = dict(zip(names, args))
        for name, value in kwargs.items():
            if name in bound:
                raise CompileError(f"workflow {wf!r}, node {node_id!r}: input {name!r} is bound twice")
            if name not in self.inputs:
                raise CompileError(
                    f"workflow {wf!r}, node {node_id!r}: {self.name} has no input {name!r}; "
                    f"its inputs are {', '.join(self.inputs) or 'none'}"
                )
            bound[name] = value
        return bound

    def _add_node(self, trace: _Trace, args: tuple[Any, ...], kwargs: dict[str, Any], *, kind: str,
                  map_spec: MapSpec | None = None) -> Any:
        template = self.template
        node_id = trace.new_id(self.fn.__name__ if kind == "task" else f"map-{self.fn.__name__}")
        where_wf = trace.name
        bound = self._bind_args(args, kwargs, node_id, where_wf)
        bindings: dict[str, Binding] = {}
        for name, tp in self.inputs.items():
            where = f"workflow {where_wf!r}, node {node_id!r}, input {name!r}"
            if name not in bound:
                if name in self.defaults:
                    bound[name] = self.defaults[name]
                else:
                    raise CompileError(f"{where}: missing; {self.name} needs it ({template.interface.inputs[name].describe()})")
            expected = template.interface.inputs[name]
            value_tp = tp
            if map_spec is not None and name == map_spec.over:
                expected, value_tp = TypeSpec(kind="list", args=(expected,)), list[tp]  # type: ignore[valid-type]
            bindings[name] = _bind(bound[name], expected, value_tp, where)
        known = trace.tasks.setdefault(template.name, template)
        if known is not template and known != template:
            raise CompileError(
                f"workflow {where_wf!r}: two different tasks are both named {template.name!r}; "
                "give one another name (task(name=...))")
        node = Node(id=node_id, kind=typing.cast(Any, kind), task=template.name, inputs=bindings, map=map_spec)
        trace.nodes.append(node)
        spec_outputs = WorkflowSpec(name="", tasks={template.name: template}).node_outputs(node)
        promises = {n: Promise(trace, node_id, n, t) for n, t in spec_outputs.items()}
        if not promises:
            return None
        if len(promises) == 1:
            return next(iter(promises.values()))
        return Outputs(promises)


def task(
    fn: Callable[..., Any] | None = None,
    *,
    retries: int = 0,
    system_retries: int = 3,
    timeout: float | dt.timedelta | None = None,
    cache: bool = False,
    cache_version: str = "",
    resources: Resources | dict[str, Any] | None = None,
    image: str | None = None,
    env: dict[str, str] | None = None,
    secrets: list[str] | tuple[str, ...] = (),
    pod: PodOptions | dict[str, Any] | None = None,
    plugin: TaskConfig | None = None,
    task_type: str | None = None,
    config: dict[str, Any] | None = None,
    name: str | None = None,
) -> Any:
    """Make a typed task of a Python function.

    ``retries`` is the budget for failures of the user's code, ``system_retries`` for
    failures of the platform (a lost worker, a plugin error). ``plugin`` attaches a task
    type's configuration (``plugin=Spark(...)``); ``task_type`` with a ``config`` dict does the
    same by name. ``pod`` places the task's pods on Kubernetes (node selector, tolerations,
    annotations; :class:`plait.PodOptions`).
    """

    def wrap(f: Callable[..., Any]) -> Task[Any]:
        if plugin is not None and not isinstance(plugin, TaskConfig):
            raise CompileError(
                f"task {f.__qualname__}: plugin= takes a task type's config object (a "
                f"plait.TaskConfig such as Spark(...)), not {type(plugin).__name__}"
            )
        kind = task_type or (type(plugin).task_type if plugin is not None else "python")
        res = Resources(**resources) if isinstance(resources, dict) else (resources or Resources())
        return Task(f, task_type=kind, config=plugin if plugin is not None else config, name=name,
                    retries=retries, system_retries=system_retries, timeout=_seconds(timeout),
                    cache=cache, cache_version=cache_version, resources=res, image=image,
                    env=dict(env or {}), secrets=tuple(secrets),
                    pod=PodOptions(**pod) if isinstance(pod, dict) else pod)

    return wrap(fn) if fn is not None else wrap


def external_task(name: str, plugin: TaskConfig, *, inputs: dict[str, Any] | None = None,
                  outputs: dict[str, Any] | None = None, **options: Any) -> Task[Any]:
    """A task whose work is not a Python function: a typed interface plus a task type's config.

    Plugins build their task constructors on it (``container_task``, a notebook, a query):
    ``inputs`` and ``outputs`` map names to types, ``plugin`` says how to run it, and
    ``options`` are :func:`task`'s (retries, timeout, cache, ...).
    """
    inputs, outputs = dict(inputs or {}), dict(outputs or {})
    kind = type(plugin).task_type

    def run_outside_workflow(**kwargs: Any) -> Any:
        raise CompileError(f"{kind} task {name!r} runs only inside a workflow")

    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=t)
              for n, t in inputs.items()]
    ident = re.sub(r"\W", "_", name)
    ret: Any = None
    if outputs:
        ret = typing.NamedTuple(f"{ident}_outputs", list(outputs.items()))  # type: ignore[misc,no-redef]
    run_outside_workflow.__name__ = run_outside_workflow.__qualname__ = ident
    run_outside_workflow.__annotations__ = {**inputs, "return": ret}
    run_outside_workflow.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    t: Task[Any] = task(run_outside_workflow, plugin=plugin, name=name, **options)
    t.runs_python = False
    return t




def dynamic(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """A task that builds a workflow at run time from its actual inputs.

    The body runs like a workflow body, but with real values: it may loop and branch on
    them. The graph it builds is compiled and type-checked before any of it runs.
    """

    def wrap(f: Callable[..., Any]) -> Task[Any]:
        t: Task[Any] = task(f, **options)
        t.options["dynamic"] = True
        return t

    return wrap(fn) if fn is not None else wrap


def map(task: Task[Any], over: Any, *, concurrency: int | None = None,
        min_success_ratio: float = 1.0, **inputs: Any) -> Any:
    """Run ``task`` once per item of ``over``; other keyword inputs go to every item.

    ``over`` binds to the task's one input not given in ``inputs`` (or name it with
    ``over={"batch": batches}``). Returns a promise of a list of the task's output, in item
    order. With ``min_success_ratio`` below 1, failed items are ``None`` in that list.
    """
    if not isinstance(task, Task):
        raise CompileError(f"map() takes a @task, got {task!r}")
    if isinstance(min_success_ratio, Promise) or isinstance(concurrency, Promise):
        raise CompileError(f"map({task.name}): concurrency and min_success_ratio are fixed when the "
                           "workflow compiles; pass constants, not workflow inputs")
    if not 0.0 < min_success_ratio <= 1.0:
        raise CompileError(f"map({task.name}): min_success_ratio must be in (0, 1], got {min_success_ratio}")
    if concurrency is not None and concurrency < 1:
        raise CompileError(f"map({task.name}): concurrency must be at least 1, got {concurrency}")
    if isinstance(over, dict) and len(over) == 1 and not isinstance(next(iter(over.values())), dict):
        (over_name, over_value), = over.items()
    else:
        free = [n for n in task.inputs if n not in inputs and n not in task.defaults]
        if len(free) != 1:
            raise CompileError(
                f"map({task.name}): cannot tell which input `over` binds to (unbound inputs: "
                f"{', '.join(free) or 'none'}); name it: over={{'input_name': values}}"
            )
        over_name, over_value = free[0], over
    if over_name not in task.inputs:
        raise CompileError(f"map({task.name}): task has no input {over_name!r}")
    trace = _current.get()
    if trace is None:
        return [task.fn(**{**inputs, over_name: item}) for item in over_value]
    spec = MapSpec(over=over_name, concurrency=concurrency, min_success_ratio=min_success_ratio)
    return task._add_node(trace, (), {**inputs, over_name: over_value}, kind="map", map_spec=spec)


# ---------------------------------------------------------------------------------------
# Workflows
# ---------------------------------------------------------------------------------------


class Workflow:
    """A compiled graph of tasks. Create with :func:`workflow`."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self._spec: WorkflowSpec | None = None

    def __repr__(self) -> str:
        return f"<plait workflow {self.name}>"

    @property
    def spec(self) -> WorkflowSpec:
        """The compiled, type-checked spec (compiled on first use)."""
        if self._spec is None:
            from plait.authoring.compiler import check_spec

            self._spec = check_spec(trace_workflow(self.fn, self.name))
        return self._spec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = _current.get()
        if trace is None:
            if _run_inline is None:
                raise PlaitError("import plait before calling a workflow outside a workflow body")
            return _run_inline(self, *args, **kwargs)
        spec = self.spec
        node_id = trace.new_id(self.fn.__name__)
        names = list(spec.inputs)
        if len(args) > len(names):
            raise CompileError(f"workflow {trace.name!r}, node {node_id!r}: {spec.name} takes {len(names)} "
                               f"inputs, got {len(args)}")
        bound = dict(zip(names, args))
        for k, v in kwargs.items():
            if k in bound:
                raise CompileError(f"workflow {trace.name!r}, node {node_id!r}: input {k!r} is bound twice")
            if k not in spec.inputs:
                raise CompileError(f"workflow {trace.name!r}, node {node_id!r}: {spec.name} has no input {k!r}; "
                                   f"its inputs are {', '.join(names) or 'none'}")
            bound[k] = v
        hints = typing.get_type_hints(self.fn)
        bindings = {}
        for name, t in spec.inputs.items():
            where = f"workflow {trace.name!r}, node {node_id!r}, input {name!r}"
            if name not in bound:
                if name in spec.defaults:
                    bindings[name] = Binding.constant(spec.defaults[name])
                    continue
                raise CompileError(f"{where}: missing; workflow {spec.name} needs it ({t.describe()})")
            bindings[name] = _bind(bound[name], t, hints[name], where)
        if trace.subworkflows.setdefault(spec.name, spec) != spec:
            raise CompileError(f"workflow {trace.name!r}: two different sub-workflows are both named {spec.name!r}")
        trace.nodes.append(Node(id=node_id, kind="workflow", workflow=spec.name, inputs=bindings))
        promises = {n: Promise(trace, node_id, n, t) for n, t in spec.outputs.items()}
        if not promises:
            return None
        if len(promises) == 1:
            return next(iter(promises.values()))
        return Outputs(promises)


def workflow(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Make a workflow of a function whose body calls tasks; it is traced once, when first used."""

    def wrap(f: Callable[..., Any]) -> Workflow:
        return Workflow(f, name)

    return wrap(fn) if fn is not None else wrap


def trace_workflow(fn: Callable[..., Any], name: str, values: dict[str, Any] | None = None) -> WorkflowSpec:
    """Run ``fn`` under a trace and return the (unchecked) spec it builds.

    With ``values`` (a dynamic task), the function gets real inputs and the spec has none.
    """
    what = "workflow" if values is None else "dynamic task"
    inputs, defaults, outputs = _signature_types(fn, what)
    trace = _Trace(name=name)
    eng = engine()
    input_specs = {n: eng.spec(t) for n, t in inputs.items()} if values is None else {}
    default_lits: dict[str, Any] = {}
    for n, d in defaults.items():
        if values is None:
            default_lits[n] = _bind(d, input_specs[n], inputs[n], f"workflow {name!r}, default of {n!r}").value
    args = values if values is not None else {n: Promise(trace, "", n, s) for n, s in input_specs.items()}
    token = _current.set(trace)
    try:
        result = fn(**args)
    except (TypeError, AttributeError) as exc:
        if values is not None:
            raise
        raise CompileError(
            f"workflow {name!r}: its body raised {type(exc).__name__}: {exc}. While a workflow compiles, "
            "task outputs are promises, not values: compute with them inside a task"
        ) from exc
    finally:
        _current.reset(token)
    output_specs = {n: eng.spec(t) for n, t in outputs.items()}
    results: tuple[Any, ...]
    if not output_specs:
        results = ()
        if result is not None:
            raise CompileError(f"{what} {name!r} returns a value but declares no return type")
    elif len(output_specs) == 1:
        results = (result,)
    else:
        if isinstance(result, Outputs):
            result = tuple(result)
        if not isinstance(result, tuple) or len(result) != len(output_specs):
            raise CompileError(
                f"{what} {name!r} declares outputs {', '.join(output_specs)} but returns {result!r}")
        results = tuple(result)
    bindings = {}
    for (out_name, out_spec), value in zip(output_specs.items(), results):
        where = f"{what} {name!r}, output {out_name!r}"
        bindings[out_name] = _bind(value, out_spec, outputs[out_name], where)
    return WorkflowSpec(
        name=name, inputs=input_specs, defaults=default_lits, outputs=output_specs,
        output_bindings=bindings, nodes=tuple(trace.nodes), tasks=trace.tasks,
        subworkflows=trace.subworkflows,
    )

