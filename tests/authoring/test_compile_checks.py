"""What the compiler checks in a spec it did not trace, and the rules of `castable`.

A traced workflow is checked as it is traced, so these checks matter most for a spec loaded
from JSON or built by a dynamic task: each test edits the JSON of a valid spec
(``flows.nested``: workflow input ``a`` -> sub-workflow ``flows.arithmetic(a, b=2)`` ->
``double``) and asks ``check_spec``. Written for the survivors of `make mutate`
(bench/MUTATION.md).
"""

from __future__ import annotations

from typing import Any

import flows
import pytest
from plait.authoring.compiler import check_spec
from plait.model.errors import CompileError, TypeMismatchError
from plait.model.spec import WorkflowSpec
from plait.model.typespec import TypeSpec
from plait.types.engine import TypeEngine, TypeTransformer, engine

INT = {"kind": "int"}
STR = {"kind": "str"}


def nested() -> dict[str, Any]:
    return flows.nested.spec.model_dump(mode="json")


def node(spec: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in spec["nodes"] if n["id"] == node_id)


def promise(node_id: str, output: str) -> dict[str, Any]:
    return {"kind": "promise", "node": node_id, "output": output}


def check(spec: dict[str, Any]) -> WorkflowSpec:
    return check_spec(WorkflowSpec.model_validate(spec))


def test_the_unedited_spec_compiles():
    assert check(nested()).version == flows.nested.spec.version


def test_a_sub_workflow_is_checked_too():
    spec = nested()
    sub = spec["subworkflows"]["flows.arithmetic"]
    node(sub, "double")["inputs"]["x"] = promise("nowhere", "o0")
    with pytest.raises(CompileError, match="workflow 'flows.arithmetic', node 'double', input 'x': "
                                           "bound to node 'nowhere', which does not exist"):
        check(spec)


def test_a_workflow_output_bound_to_a_value_of_another_type_is_a_mismatch():
    spec = nested()
    spec["outputs"]["o0"] = STR
    with pytest.raises(TypeMismatchError) as info:
        check(spec)
    assert str(info.value) == ("workflow 'flows.nested', output 'o0': expects str, "
                               "but is bound to double.o0 of type int")


def test_a_node_input_bound_to_another_node_output_of_another_type_names_both():
    spec = nested()
    spec["tasks"]["flows.double"]["interface"]["inputs"]["x"] = STR  # the outer graph's double(x: str)
    with pytest.raises(TypeMismatchError) as info:
        check(spec)
    assert str(info.value) == ("workflow 'flows.nested', node 'double', input 'x': expects str, "
                               "but is bound to arithmetic.o0 of type int")


def test_a_sub_workflow_input_with_a_default_may_be_left_unbound():
    spec = nested()
    del node(spec, "arithmetic")["inputs"]["b"]  # b defaults to 2 in flows.arithmetic
    check(spec)


def test_an_input_after_one_left_to_its_default_is_still_checked():
    spec = nested()
    spec["subworkflows"]["flows.arithmetic"]["defaults"] = {"a": 1, "b": 2}
    del node(spec, "arithmetic")["inputs"]["a"]
    node(spec, "arithmetic")["inputs"]["b"] = promise("", "text")
    spec["inputs"]["text"] = STR
    with pytest.raises(TypeMismatchError, match="node 'arithmetic', input 'b': expects int, "
                                                "but is bound to workflow input 'text' of type str"):
        check(spec)


def test_each_item_of_a_list_binding_is_checked_against_the_element_type():
    spec = nested()
    spec["inputs"]["text"] = STR
    spec["tasks"]["flows.double"]["interface"]["inputs"]["x"] = {"kind": "list", "args": [INT]}
    node(spec, "double")["inputs"]["x"] = {"kind": "list", "items": [promise("", "a"), promise("", "text")]}
    with pytest.raises(TypeMismatchError, match=r"node 'double', input 'x'\[1\]: expects int, "
                                                "but is bound to workflow input 'text' of type str"):
        check(spec)
    node(spec, "double")["inputs"]["x"]["items"][1] = promise("arithmetic", "o0")
    check(spec)  # a list of ints where a list of ints is expected


def test_a_list_binding_where_no_list_is_expected_is_a_mismatch():
    spec = nested()
    node(spec, "double")["inputs"]["x"] = {"kind": "list", "items": [promise("arithmetic", "o0")]}
    with pytest.raises(TypeMismatchError, match="node 'double', input 'x': expects int, but is bound to a list"):
        check(spec)


# -- castable ---------------------------------------------------------------------------


def spec_of(kind: str, *args: TypeSpec, **meta: Any) -> TypeSpec:
    return TypeSpec(kind=kind, args=args, meta=meta)


def test_none_and_the_optional_types_inner_type_may_be_bound_to_an_optional():
    optional_int = spec_of("optional", spec_of("int"))
    assert engine().castable(spec_of("none"), optional_int)
    assert engine().castable(spec_of("int"), optional_int)
    assert not engine().castable(spec_of("str"), optional_int)


def test_an_int_may_be_bound_to_a_float_and_nothing_else_may():
    assert engine().castable(spec_of("int"), spec_of("float"))
    assert not engine().castable(spec_of("str"), spec_of("float"))
    assert not engine().castable(spec_of("float"), spec_of("int"))


def test_a_kind_no_transformer_owns_is_castable_only_to_an_equal_spec():
    bare = TypeEngine([])
    assert bare.castable(spec_of("x.thing", version=1), spec_of("x.thing", version=1))
    assert not bare.castable(spec_of("x.thing", version=1), spec_of("x.thing", version=2))


def test_a_transformer_that_does_not_say_accepts_only_equal_specs_of_its_kind():
    class Things(TypeTransformer):
        name = "things"
        kinds = ("x.thing",)

    things = TypeEngine([Things()])
    assert things.castable(spec_of("x.thing", version=1), spec_of("x.thing", version=1))
    assert not things.castable(spec_of("x.thing", version=1), spec_of("x.thing", version=2))
    assert Things().castable(spec_of("x.thing", version=1), spec_of("x.thing", version=1), things) is True
