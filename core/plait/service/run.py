"""Running a workflow from Python: encode inputs, run the engine, decode outputs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from plait.authoring.decorators import Workflow, _signature_types
from plait.engine import build_engine
from plait.engine.execution import Engine, ExecutionResult, Listener, RunOptions, new_execution_id
from plait.engine.host import EngineHost
from plait.model.errors import ExecutionFailed, InputError, PlaitError
from plait.model.settings import Settings
from plait.model.spec import WorkflowSpec
from plait.model.status import Phase
from plait.plugins.registry import warm_up
from plait.storage.queue import ExecutionQueue
from plait.types.engine import ValueIO, decode_values, encode_values


@dataclass
class Execution:
    """A finished execution with its outputs as Python values."""

    execution_id: str
    phase: Phase
    outputs: dict[str, Any]
    error: str | None
    failed_node: str | None
    result: ExecutionResult

    def raise_for_failure(self) -> None:
        if self.phase != Phase.SUCCEEDED:
            raise ExecutionFailed(self.execution_id, self.failed_node, self.error or self.phase.value)


def encode_inputs(wf: Workflow, values: dict[str, Any], engine: Engine) -> dict[str, Any]:
    types, defaults, _ = _signature_types(wf.fn, "workflow")
    unknown = set(values) - set(types)
    if unknown:
        raise InputError(f"workflow {wf.name} has no input {sorted(unknown)[0]!r}; its inputs are "
                         f"{', '.join(types) or 'none'}")
    missing = [n for n in types if n not in values and n not in defaults]
    if missing:
        raise InputError(f"workflow {wf.name} needs input {missing[0]!r} ({wf.spec.inputs[missing[0]].describe()})")
    given = {n: t for n, t in types.items() if n in values}
    vio = ValueIO(engine.blobs, where=f"workflow {wf.name}")
    try:
        return encode_values(values, given, vio, what="input")
    except PlaitError as exc:
        raise InputError(str(exc)) from None


CLAIM_LEASE_S = 30.0
"""How long ``plait run``'s claim on its own execution lasts unrenewed (renewed every third)."""


class _RunChoices(Protocol):
    inline: bool
    fail_fast: bool
    overwrite_cache: bool
    priority: int
    platform: str


def stored_options(options: _RunChoices) -> dict[str, Any]:
    """The run options a queue row keeps, for the engine that may take the execution over."""
    return {"inline": options.inline, "fail_fast": options.fail_fast, "overwrite_cache": options.overwrite_cache,
            "priority": options.priority, "platform": options.platform}


async def run_claimed_here(engine: Engine, spec: WorkflowSpec, inputs: dict[str, Any], options: RunOptions,
                           listener: Listener | None = None, lease_s: float = CLAIM_LEASE_S) -> ExecutionResult:
    """Create the execution queued and claimed by this process in one step, then run it here.

    What ``plait run`` does: it behaves as a direct run, but should this process die, its lease
    expires and a ``plait engine`` sharing the store resumes the execution from its events.
    """
    host = EngineHost(engine, lease_s=lease_s, concurrency=1)
    xid = options.execution_id or new_execution_id()
    stored = stored_options(options)
    claim = ExecutionQueue(engine.store).enqueue(xid, spec, {**spec.defaults, **inputs}, stored, options.project,
                                                 options.domain, owner=host.owner, lease_s=lease_s)
    result = await host.run_claimed(claim, listener)
    if result is None:
        raise PlaitError(f"execution {xid}: this process lost its claim (it stalled past its {lease_s:g}s lease) "
                         f"and another engine runs it now; `plait executions show {xid}` follows it")
    return result


async def resume_claimed_here(engine: Engine, execution_id: str, options: RunOptions,
                              listener: Listener | None = None, lease_s: float = CLAIM_LEASE_S) -> ExecutionResult:
    """Resume an execution here under a claim, so no ``plait engine`` runs it at the same time
    (``plait executions resume``); an error naming the engine that holds it, if one does."""
    host = EngineHost(engine, lease_s=lease_s, concurrency=1)
    stored = stored_options(options)
    claim = ExecutionQueue(engine.store).claim_for_resume(host.owner, execution_id, stored, lease_s)
    result = await host.run_claimed(claim, listener, resume=options)
    if result is None:
        raise PlaitError(f"execution {execution_id}: this process lost its claim and another engine runs it now")
    return result


def _runs_python(spec: WorkflowSpec) -> bool:
    return (any(t.type == "python" for t in spec.tasks.values())
            or any(_runs_python(sub) for sub in spec.subworkflows.values()))


def run(wf: Workflow, inputs: dict[str, Any] | None = None, *, options: RunOptions | None = None,
        settings: Settings | None = None, listener: Listener | None = None,
        engine: Engine | None = None) -> Execution:
    """Run ``wf`` to the end on the local platform and return its execution."""
    own = engine is None
    spec = wf.spec
    if not (options and options.inline) and _runs_python(spec):  # its workers start while the store opens
        warm_up(options.platform if options else "local", engine.registry if engine else None)
    engine = engine or build_engine(settings)
    try:
        literals = encode_inputs(wf, inputs or {}, engine)
        result = asyncio.run(engine.run(spec, literals, options, listener))
        outputs: dict[str, Any] = {}
        if result.phase == Phase.SUCCEEDED and result.outputs is not None:
            _, _, out_types = _signature_types(wf.fn, "workflow")
            outputs = decode_values(result.outputs, out_types, ValueIO(engine.blobs, where=wf.name), what="output")
        return Execution(result.execution_id, result.phase, outputs, result.error, result.failed_node, result)
    finally:
        if own:
            engine.close()


def run_inline(wf: Workflow, *args: Any, **kwargs: Any) -> Any:
    """Calling a workflow outside another one runs it in this process and returns its outputs."""
    names = list(wf.spec.inputs)
    values = {**dict(zip(names, args)), **kwargs}
    execution = run(wf, values, options=RunOptions(inline=True))
    execution.raise_for_failure()
    outs = list(execution.outputs.values())
    if not outs:
        return None
    return outs[0] if len(outs) == 1 else tuple(outs)
