"""Checking a compiled workflow before anything runs.

:func:`check_spec` is applied to every spec: one traced from ``@workflow``, one loaded
from JSON, and one a dynamic task builds at run time. Every error names the workflow, the
node, the input and, for a type mismatch, both types.
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

from pydantic import ValidationError

from plait.model.errors import CompileError, TypeMismatchError, UnknownTaskTypeError
from plait.model.spec import Binding, Node, WorkflowSpec
from plait.model.typespec import TypeSpec
from plait.plugins.registry import load_registry
from plait.types.engine import engine


def check_spec(spec: WorkflowSpec) -> WorkflowSpec:
    """Validate ``spec`` and return it with its content version set."""
    for sub in spec.subworkflows.values():
        check_spec(sub)
    wf = spec.name
    nodes = {n.id: n for n in spec.nodes}
    if len(nodes) != len(spec.nodes):
        raise CompileError(f"workflow {wf!r}: two nodes share an id")
    registry = load_registry()
    for name, template in spec.tasks.items():
        try:
            task_type = registry.task_type(template.type, needed_by=name)
        except UnknownTaskTypeError as exc:
            raise UnknownTaskTypeError(f"workflow {wf!r}: {exc}") from None
        if task_type.config_model is not None:
            try:
                task_type.config_model.model_validate(template.config)
            except ValidationError as exc:
                raise CompileError(
                    f"workflow {wf!r}: task {name!r} has an invalid {template.type} configuration:\n{exc}"
                ) from None
        try:
            task_type.check(template)
        except CompileError as exc:
            raise CompileError(f"workflow {wf!r}: {exc}") from None
    for node in spec.nodes:
        _check_node(spec, node, nodes)
    missing = set(spec.outputs) ^ set(spec.output_bindings)
    if missing:
        raise CompileError(f"workflow {wf!r}: outputs {sorted(missing)} are declared but not bound, or bound but not declared")
    for out, binding in spec.output_bindings.items():
        _check_binding(spec, binding, spec.outputs[out], nodes, f"workflow {wf!r}, output {out!r}")
    order = TopologicalSorter({n.id: n.upstream() for n in spec.nodes})
    try:
        tuple(order.static_order())
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise CompileError(f"workflow {wf!r} has a cycle: {cycle}") from None
    return spec.with_version()


def _check_node(spec: WorkflowSpec, node: Node, nodes: dict[str, Node]) -> None:
    wf = spec.name
    if node.kind == "workflow":
        if node.workflow not in spec.subworkflows:
            raise CompileError(f"workflow {wf!r}, node {node.id!r}: unknown sub-workflow {node.workflow!r}")
    elif node.task not in spec.tasks:
        raise CompileError(f"workflow {wf!r}, node {node.id!r}: unknown task {node.task!r}")
    if node.kind == "map" and node.map is None:
        raise CompileError(f"workflow {wf!r}, node {node.id!r}: a map node needs a map spec")
    expected = spec.node_inputs(node)
    defaults = spec.subworkflows[node.workflow].defaults if node.kind == "workflow" and node.workflow else {}
    for name, t in expected.items():
        where = f"workflow {wf!r}, node {node.id!r}, input {name!r}"
        if name not in node.inputs:
            if name in defaults:
                continue
            raise CompileError(f"{where}: missing ({t.describe()})")
        _check_binding(spec, node.inputs[name], t, nodes, where)
    extra = set(node.inputs) - set(expected)
    if extra:
        raise CompileError(f"workflow {wf!r}, node {node.id!r}: unknown inputs {sorted(extra)}")


def _check_binding(spec: WorkflowSpec, binding: Binding, expected: TypeSpec, nodes: dict[str, Node], where: str) -> None:
    if binding.kind == "value":
        return  # constants were encoded against their type when traced
    if binding.kind == "list":
        if expected.kind != "list":
            raise TypeMismatchError(f"{where}: expects {expected.describe()}, but is bound to a list")
        for i, item in enumerate(binding.items):
            _check_binding(spec, item, expected.args[0], nodes, f"{where}[{i}]")
        return
    assert binding.output is not None
    if not binding.node:
        actual = spec.inputs.get(binding.output)
        source = f"workflow input {binding.output!r}"
    else:
        upstream = nodes.get(binding.node)
        if upstream is None:
            raise CompileError(f"{where}: bound to node {binding.node!r}, which does not exist")
        actual = spec.node_outputs(upstream).get(binding.output)
        source = f"{binding.node}.{binding.output}"
    if actual is None:
        raise CompileError(f"{where}: bound to {source}, which does not exist")
    if not engine().castable(actual, expected):
        raise TypeMismatchError(
            f"{where}: expects {expected.describe()}, but is bound to {source} of type {actual.describe()}"
        )
