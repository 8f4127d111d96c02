"""The compiled workflow: pydantic models that round-trip through JSON.

A :class:`WorkflowSpec` holds everything needed to run a workflow without its source: the
task templates (type, interface, options, plugin config), the nodes and their bindings,
nested workflows, default inputs and outputs. Its ``version`` is a hash of its content.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plait.model.typespec import TypeSpec


class Resources(BaseModel):
    """What one attempt needs: CPU cores, memory (``"2Gi"``), GPUs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: float | None = None
    memory: str | None = None
    gpu: int = 0


class PodOptions(BaseModel):
    """Where a task's pods go on Kubernetes, on top of the platform's and the project's settings
    (the task's win): ``@task(pod=PodOptions(node_selector={"pool": "gpu"}))``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_selector: dict[str, str] = {}
    tolerations: tuple[dict[str, Any], ...] = ()
    """Tolerations as in the Pod spec: ``key``, ``operator``, ``value``, ``effect``, ``tolerationSeconds``."""
    annotations: dict[str, str] = {}

    @field_validator("tolerations")
    @classmethod
    def _toleration_fields(cls, tolerations: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        known = {"key", "operator", "value", "effect", "tolerationSeconds"}
        for toleration in tolerations:
            unknown = set(toleration) - known
            if unknown:
                raise ValueError(f"a toleration has {sorted(unknown)}; a toleration has only {sorted(known)}")
        return tolerations


class PythonRef(BaseModel):
    """Where a task's function lives, so a worker process or a pod can import it."""

    model_config = ConfigDict(frozen=True)

    module: str
    qualname: str
    file: str | None = None


class Interface(BaseModel):
    model_config = ConfigDict(frozen=True)

    inputs: dict[str, TypeSpec] = {}
    outputs: dict[str, TypeSpec] = {}


class TaskTemplate(BaseModel):
    """One task: its type, typed interface, run options and plugin configuration."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str = "python"
    interface: Interface = Interface()
    config: dict[str, Any] = {}
    retries: int = 0
    system_retries: int = 3
    timeout: float | None = None
    cache: bool = False
    cache_version: str = ""
    resources: Resources = Resources()
    image: str | None = None
    env: dict[str, str] = {}
    secrets: tuple[str, ...] = ()
    pod: PodOptions = PodOptions()
    ref: PythonRef | None = None
    dynamic: bool = False

    def cache_key(self, inputs: dict[str, Any]) -> str:
        """Key of a cached result: task name, cache version, interface and input literals."""
        payload = json.dumps(
            [self.name, self.cache_version, self.interface.model_dump(mode="json"), inputs],
            sort_keys=True, separators=(",", ":"), default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


class Binding(BaseModel):
    """Where a node input (or workflow output) gets its value.

    ``promise``: output ``output`` of node ``node`` (node ``""`` means the workflow's own
    inputs); ``value``: a literal constant; ``list``: a list built from other bindings.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["promise", "value", "list"]
    node: str | None = None
    output: str | None = None
    value: Any = None
    items: tuple[Binding, ...] = ()

    @classmethod
    def promise(cls, node: str, output: str) -> Binding:
        return cls(kind="promise", node=node, output=output)

    @classmethod
    def constant(cls, literal: Any) -> Binding:
        return cls(kind="value", value=literal)

    def upstream(self) -> set[str]:
        if self.kind == "promise":
            return {self.node} if self.node else set()
        if self.kind == "list":
            return set().union(*(b.upstream() for b in self.items)) if self.items else set()
        return set()

    def describe(self) -> str:
        if self.kind == "promise":
            return f"{self.node or 'workflow input'}.{self.output}" if self.node else f"input {self.output!r}"
        if self.kind == "list":
            return "[" + ", ".join(b.describe() for b in self.items) + "]"
        return f"constant {self.value!r:.40}"


class MapSpec(BaseModel):
    """How a map node fans out: which inputs it iterates and how many items run at once."""

    model_config = ConfigDict(frozen=True)

    over: str
    concurrency: int | None = None
    min_success_ratio: float = 1.0


class Node(BaseModel):
    """One step of a workflow: a task, a map over a task, or a nested workflow."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["task", "map", "workflow"] = "task"
    task: str | None = None
    workflow: str | None = None
    inputs: dict[str, Binding] = {}
    map: MapSpec | None = None

    def upstream(self) -> set[str]:
        return set().union(*(b.upstream() for b in self.inputs.values())) if self.inputs else set()


class WorkflowSpec(BaseModel):
    """A compiled workflow. Build with ``@workflow``; load with ``model_validate_json``."""

    model_config = ConfigDict(frozen=True)

    name: str
    inputs: dict[str, TypeSpec] = {}
    defaults: dict[str, Any] = {}
    outputs: dict[str, TypeSpec] = {}
    output_bindings: dict[str, Binding] = {}
    nodes: tuple[Node, ...] = ()
    tasks: dict[str, TaskTemplate] = {}
    subworkflows: dict[str, WorkflowSpec] = {}
    version: str = Field(default="", description="content hash; set by with_version()")

    def with_version(self) -> WorkflowSpec:
        body = self.model_dump(mode="json", exclude={"version"})
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        return self.model_copy(update={"version": digest.hexdigest()[:16]})

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def node_outputs(self, node: Node) -> dict[str, TypeSpec]:
        """The output types of ``node`` as seen by its consumers (lists, for a map)."""
        if node.kind == "workflow":
            assert node.workflow is not None
            return self.subworkflows[node.workflow].outputs
        assert node.task is not None
        outputs = self.tasks[node.task].interface.outputs
        if node.kind == "map":
            assert node.map is not None
            optional = node.map.min_success_ratio < 1.0
            return {
                name: TypeSpec(kind="list", args=(
                    TypeSpec(kind="optional", args=(t,)) if optional and t.kind != "optional" else t,
                ))
                for name, t in outputs.items()
            }
        return outputs

    def node_inputs(self, node: Node) -> dict[str, TypeSpec]:
        """The input types ``node`` expects from its bindings (a list for the mapped input)."""
        if node.kind == "workflow":
            assert node.workflow is not None
            return self.subworkflows[node.workflow].inputs
        assert node.task is not None
        inputs = dict(self.tasks[node.task].interface.inputs)
        if node.kind == "map":
            assert node.map is not None
            inputs[node.map.over] = TypeSpec(kind="list", args=(inputs[node.map.over],))
        return inputs


Binding.model_rebuild()
WorkflowSpec.model_rebuild()
