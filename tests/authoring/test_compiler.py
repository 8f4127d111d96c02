"""Compile-time checks: every error names the workflow, the node, the input and both types.

Workflows that must fail to compile are defined inside the tests: they compile lazily, on
the first ``.spec``, so this module imports cleanly.
"""

from __future__ import annotations

import datetime as dt

import flows
import plait
import pytest
from plait.authoring.compiler import check_spec
from plait.model.errors import CompileError, TypeMismatchError, UnknownTaskTypeError
from plait.model.spec import Binding, WorkflowSpec


def test_a_task_output_of_the_wrong_type_for_a_downstream_input_is_a_mismatch():
    @plait.workflow(name="wf_mismatch")
    def wf(a: int) -> int:
        return flows.double(x=flows.to_text(x=a))

    with pytest.raises(TypeMismatchError) as info:
        _ = wf.spec
    assert str(info.value) == (
        "workflow 'wf_mismatch', node 'double', input 'x': expects int, "
        "but is bound to to_text.o0 of type str"
    )


def test_a_workflow_input_of_the_wrong_type_for_a_task_input_is_a_mismatch():
    @plait.workflow(name="wf_input_mismatch")
    def wf(items: list[str]) -> int:
        return flows.total(xs=items)

    with pytest.raises(TypeMismatchError) as info:
        _ = wf.spec
    message = str(info.value)
    assert "workflow 'wf_input_mismatch'" in message and "node 'total'" in message and "input 'xs'" in message
    assert "expects list[int]" in message and "of type list[str]" in message


def test_a_constant_of_the_wrong_type_is_a_mismatch():
    @plait.workflow(name="wf_constant")
    def wf(a: int) -> int:
        return flows.add(a=a, b="two")

    with pytest.raises(TypeMismatchError) as info:
        _ = wf.spec
    assert str(info.value) == "workflow 'wf_constant', node 'add', input 'b': expected int, got str 'two'"


def test_a_missing_input_names_the_workflow_node_input_and_type():
    @plait.workflow(name="wf_missing")
    def wf(a: int) -> int:
        return flows.add(a=a)

    with pytest.raises(CompileError) as info:
        _ = wf.spec
    message = str(info.value)
    assert message.startswith("workflow 'wf_missing', node 'add', input 'b': missing")
    assert "flows.add" in message and "(int)" in message


def test_an_unknown_task_type_names_the_workflow_and_task_and_says_what_to_install():
    @plait.task(task_type="nosuch", name="needs_nosuch")
    def step(a: int) -> int:
        return a

    @plait.workflow(name="wf_unknown_type")
    def wf(a: int) -> int:
        return step(a=a)

    with pytest.raises(UnknownTaskTypeError) as info:
        _ = wf.spec
    message = str(info.value)
    assert "unknown task type 'nosuch'" in message
    assert "'needs_nosuch'" in message
    assert "pip install plait-nosuch" in message
    assert "python" in message and "container" in message  # the installed task types
    assert "wf_unknown_type" in message


def test_an_invalid_plugin_config_includes_the_validation_error_and_names_the_task():
    @plait.task(task_type="container", config={"image": 3, "command": ["true"]}, name="bad_container")
    def step(a: int) -> int:
        return a

    @plait.workflow(name="wf_bad_config")
    def wf(a: int) -> int:
        return step(a=a)

    with pytest.raises(CompileError) as info:
        _ = wf.spec
    message = str(info.value)
    assert message.startswith("workflow 'wf_bad_config': task 'bad_container' has an invalid container configuration")
    assert "validation error for Container" in message
    assert "image" in message and "Input should be a valid string" in message


def _with_cycle(spec: WorkflowSpec) -> WorkflowSpec:
    """``flows.arithmetic`` (add -> double) rewired so that add also depends on double."""
    add = spec.node("add")
    inputs = {**add.inputs, "a": Binding.promise("double", "o0")}
    nodes = tuple(n.model_copy(update={"inputs": inputs}) if n.id == "add" else n for n in spec.nodes)
    return WorkflowSpec.model_validate(spec.model_copy(update={"nodes": nodes}).model_dump())


def test_a_cycle_is_a_compile_error_naming_the_nodes_on_it():
    spec = _with_cycle(flows.arithmetic.spec)
    with pytest.raises(CompileError) as info:
        check_spec(spec)
    message = str(info.value)
    assert message.startswith("workflow 'flows.arithmetic' has a cycle: ")
    cycle = message.split("has a cycle: ")[1].split(" -> ")
    assert set(cycle) == {"add", "double"} and cycle[0] == cycle[-1]


def test_a_spec_loaded_from_json_is_type_checked():
    spec = flows.files.spec  # write_file(text) -> read_file(f: File)
    node = spec.node("read_file")
    rebound = node.model_copy(update={"inputs": {"f": Binding.promise("", "text")}})
    bad = spec.model_copy(update={"nodes": tuple(rebound if n.id == "read_file" else n for n in spec.nodes)})
    loaded = WorkflowSpec.model_validate_json(bad.model_dump_json())
    with pytest.raises(TypeMismatchError) as info:
        check_spec(loaded)
    assert str(info.value) == (
        "workflow 'flows.files', node 'read_file', input 'f': expects file, "
        "but is bound to workflow input 'text' of type str"
    )


def test_a_spec_loaded_from_json_with_an_unbound_input_is_rejected():
    spec = flows.arithmetic.spec
    node = spec.node("add")
    unbound = node.model_copy(update={"inputs": {"a": node.inputs["a"]}})
    bad = spec.model_copy(update={"nodes": tuple(unbound if n.id == "add" else n for n in spec.nodes)})
    with pytest.raises(CompileError, match=r"^workflow 'flows.arithmetic', node 'add', input 'b': missing \(int\)$"):
        check_spec(WorkflowSpec.model_validate_json(bad.model_dump_json()))


def test_an_input_bound_both_positionally_and_by_keyword_is_a_compile_error():
    @plait.workflow(name="wf_twice")
    def wf(a: int, b: int) -> int:
        return flows.add(a, a=b)

    with pytest.raises(CompileError) as info:
        _ = wf.spec
    assert str(info.value) == "workflow 'wf_twice', node 'add': input 'a' is bound twice"


def test_a_sub_workflow_input_bound_twice_is_a_compile_error():
    @plait.workflow(name="wf_sub_twice")
    def wf(a: int) -> int:
        return flows.arithmetic(a, a=a)

    with pytest.raises(CompileError, match="workflow 'wf_sub_twice', node 'arithmetic': input 'a' is bound twice"):
        _ = wf.spec


@pytest.mark.parametrize(
    "wf",
    [flows.arithmetic, flows.fan_out, flows.nested, flows.two_outputs, flows.partial_map,
     flows.frames, flows.files, flows.points, flows.container_wf, flows.dynamic_wf],
    ids=lambda wf: wf.name,
)
def test_the_spec_round_trips_through_json(wf):
    spec = wf.spec
    loaded = WorkflowSpec.model_validate_json(spec.model_dump_json())
    assert loaded == spec
    assert check_spec(loaded).version == spec.version


def _build(retries: int) -> plait.Workflow:
    """The same workflow, compiled from scratch, with one task option varying."""

    @plait.task(name="tests.versioned_step", retries=retries)
    def step(x: int) -> int:
        return x + 1

    @plait.workflow(name="tests.versioned")
    def wf(x: int) -> int:
        return step(x=step(x=x))

    return wf


def test_the_version_is_stable_across_compiles():
    first, second = _build(retries=1), _build(retries=1)
    assert first is not second
    assert first.spec.version and first.spec.version == second.spec.version


def test_the_version_changes_when_a_task_option_changes():
    assert _build(retries=1).spec.version != _build(retries=2).spec.version


def test_a_promise_used_in_an_if_is_a_compile_error():
    @plait.workflow(name="wf_branch")
    def wf(a: int) -> int:
        if flows.double(x=a):
            return flows.add(a=a, b=1)
        return a

    with pytest.raises(CompileError, match=r"Promise\(double\.o0: int\) has no value .* cannot be used in an `if`"):
        _ = wf.spec


def test_iterating_over_a_promise_is_a_compile_error_suggesting_map():
    @plait.workflow(name="wf_loop")
    def wf(n: int) -> int:
        return flows.total(xs=[flows.double(x=i) for i in flows.numbers(n=n)])

    with pytest.raises(CompileError, match=r"cannot iterate over Promise\(numbers\.o0: list\[int\]\).*plait\.map"):
        _ = wf.spec


def test_a_container_command_using_an_unknown_input_is_a_compile_error():
    typo = plait.container_task("typo", image="debian", command=["echo", "{{inputs.mesage}}"],
                                inputs={"message": str}, outputs={})

    @plait.workflow
    def wf(message: str) -> None:
        typo(message=message)

    with pytest.raises(CompileError, match=r"uses \{\{inputs\.mesage\}\}, but the task's inputs are message"):
        _ = wf.spec


def test_two_different_tasks_with_one_name_are_a_compile_error():
    first = plait.container_task("step", image="debian", command=["true"])
    second = plait.container_task("step", image="debian", command=["false"])

    @plait.workflow
    def wf() -> None:
        first()
        second()

    with pytest.raises(CompileError, match="two different tasks are both named 'step'"):
        _ = wf.spec


def test_a_sub_workflow_given_an_unknown_input_or_too_many_is_a_compile_error():
    @plait.workflow
    def unknown(a: int) -> int:
        return flows.arithmetic(a=a, bb=100)

    with pytest.raises(CompileError, match="has no input 'bb'; its inputs are a, b"):
        _ = unknown.spec

    @plait.workflow
    def too_many(a: int) -> int:
        return flows.arithmetic(a, 5, 6)

    with pytest.raises(CompileError, match="takes 2 inputs, got 3"):
        _ = too_many.spec


def test_an_output_declared_but_not_bound_is_a_compile_error():
    spec = flows.two_outputs.spec  # declares count and mean
    unbound = spec.model_copy(update={"output_bindings": {"count": spec.output_bindings["count"]}})
    with pytest.raises(CompileError) as info:
        check_spec(WorkflowSpec.model_validate_json(unbound.model_dump_json()))
    assert str(info.value).startswith("workflow 'flows.two_outputs': outputs ['mean'] are declared but not bound")


def test_an_output_bound_but_not_declared_is_a_compile_error():
    spec = flows.arithmetic.spec
    extra = spec.model_copy(update={"output_bindings": {**spec.output_bindings,
                                                        "extra": spec.output_bindings["o0"]}})
    with pytest.raises(CompileError, match=r"outputs \['extra'\] are declared but not bound, or bound but not declared"):
        check_spec(WorkflowSpec.model_validate_json(extra.model_dump_json()))


def test_a_workflow_that_returns_fewer_values_than_it_declares_is_a_compile_error():
    @plait.workflow(name="wf_short")
    def wf(n: int) -> flows.Stats:
        return (flows.stats(xs=flows.numbers(n=n)).count,)

    with pytest.raises(CompileError, match=r"^workflow 'wf_short' declares outputs count, mean but returns"):
        _ = wf.spec


def _step(name: str = "tests.keyed", cache_version: str = "1", output: type = int) -> plait.Task:
    def step(x: int) -> int:
        return x

    step.__annotations__["return"] = output
    return plait.task(name=name, cache=True, cache_version=cache_version)(step)


def test_the_cache_key_is_task_name_cache_version_interface_and_inputs():
    key = _step().template.cache_key({"x": 1})
    assert _step().template.cache_key({"x": 1}) == key
    assert _step().template.cache_key({"x": 2}) != key
    assert _step(name="tests.other").template.cache_key({"x": 1}) != key
    assert _step(cache_version="2").template.cache_key({"x": 1}) != key
    assert _step(output=str).template.cache_key({"x": 1}) != key


def test_resources_image_and_a_timedelta_timeout_are_recorded_in_the_spec():
    @plait.task(name="tests.sized", resources={"cpu": 2, "memory": "4Gi", "gpu": 1}, image="ghcr.io/acme/train:1",
                timeout=dt.timedelta(minutes=2))
    def sized(x: int) -> int:
        return x

    @plait.workflow(name="wf_sized")
    def wf(x: int) -> int:
        return sized(x=x)

    template = WorkflowSpec.model_validate_json(wf.spec.model_dump_json()).tasks["tests.sized"]
    assert (template.resources.cpu, template.resources.memory, template.resources.gpu) == (2, "4Gi", 1)
    assert template.image == "ghcr.io/acme/train:1"
    assert template.timeout == 120.0


def test_several_outputs_can_be_unpacked_or_reached_by_name():
    @plait.workflow(name="wf_unpacked")
    def wf(n: int) -> flows.Stats:
        count, mean = flows.stats(xs=flows.numbers(n=n))
        return count, mean

    assert wf.spec.output_bindings["mean"].output == "mean"
    assert plait.run(wf, {"n": 4}).outputs == {"count": 4, "mean": 1.5}
