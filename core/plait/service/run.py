"""Running a workflow from Python: encode inputs, run the engine, decode outputs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from plait.authoring.decorators import Workflow, _signature_types
from plait.engine import build_engine
from plait.engine.execution import Engine, ExecutionResult, Listener, RunOptions
from plait.model.errors import ExecutionFailed, InputError, PlaitError
from plait.model.settings import Settings
from plait.model.status import Phase
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


def run(wf: Workflow, inputs: dict[str, Any] | None = None, *, options: RunOptions | None = None,
        settings: Settings | None = None, listener: Listener | None = None,
        engine: Engine | None = None) -> Execution:
    """Run ``wf`` to the end on the local platform and return its execution."""
    own = engine is None
    engine = engine or build_engine(settings)
    try:
        spec = wf.spec
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
