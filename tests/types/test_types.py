"""The type engine: values to literals and back, type errors, castability, offloading."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import typing
from pathlib import Path
from typing import Any

import pandas as pd
import plait
import pyarrow as pa
import pytest
import typed_flows
from plait.model.errors import TypeMismatchError
from plait.model.status import Phase
from plait.storage.blobs import BlobStore
from plait.types.engine import INLINE_LIMIT, ValueIO, decode_values, encode_values, engine
from plait.types.files import Directory, File
from pydantic import BaseModel, ConfigDict


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Vector:
    x: int
    y: float


@dataclasses.dataclass
class Labelled:
    x: int
    label: str


class Reading(BaseModel):
    sensor: str
    values: list[float]
    taken: dt.datetime
    colour: Colour | None = None


class Report(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    title: str
    attachment: File


@pytest.fixture
def vio(tmp_path: Path) -> ValueIO:
    return ValueIO(BlobStore(str(tmp_path / "blobs")), scratch=str(tmp_path / "scratch"), where="task t")


def roundtrip(tp: Any, value: Any, vio: ValueIO) -> tuple[Any, Any]:
    """Encode ``value`` as ``tp``, pass the literal through JSON, decode it; return both."""
    encode, decode = engine().codec(tp, vio)
    literal = json.loads(json.dumps(encode(value)))
    return literal, decode(literal)


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tp, value",
    [
        (int, 42),
        (int, -(2**62)),
        (float, 3.25),
        (bool, True),
        (bool, False),
        (str, "héllo\nwörld"),
        (bytes, b"\x00\xffbinary\x80"),
        (dt.datetime, dt.datetime(2024, 2, 29, 13, 45, 7, 123456)),
        (dt.datetime, dt.datetime(2024, 2, 29, 13, 45, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
        (dt.date, dt.date(1999, 12, 31)),
        (dt.timedelta, dt.timedelta(days=3, seconds=5, microseconds=7)),
        (dt.timedelta, dt.timedelta(seconds=-90)),
        (Colour, Colour.GREEN),
        (int | None, 7),
        (int | None, None),
        (typing.Optional[int], 8),  # noqa: UP045
        (str | None, "x"),
        (list[int], [1, 2, 3]),
        (list[list[str]], [["a"], [], ["b", "c"]]),
        (dict[str, list[int]], {"a": [1, 2], "b": []}),
        (dict[int, dict[str, float]], {1: {"p": 0.5}, 2: {}}),
        (list[dict[str, int] | None], [{"a": 1}, None]),
        (Point, Point(x=1, y=2.5)),
        (list[Point], [Point(1, 1.0), Point(2, 2.0)]),
        (Reading, Reading(sensor="s1", values=[1.0, 2.5], taken=dt.datetime(2024, 1, 1, 8), colour=Colour.RED)),
        (Reading, Reading(sensor="s2", values=[], taken=dt.datetime(2024, 1, 2))),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_values_survive_a_round_trip_through_json(tp, value, vio):
    _, decoded = roundtrip(tp, value, vio)
    assert decoded == value
    assert type(decoded) is type(value)


def test_an_int_given_for_a_float_decodes_as_a_float(vio):
    literal, decoded = roundtrip(float, 2, vio)
    assert literal == 2.0 and isinstance(decoded, float)


def test_an_enum_is_encoded_as_its_value_and_accepts_the_raw_value(vio):
    literal, decoded = roundtrip(Colour, "red", vio)
    assert literal == "red"
    assert decoded is Colour.RED


def test_a_struct_may_be_given_as_a_dict_of_its_fields(vio):
    _, decoded = roundtrip(Point, {"x": 1, "y": 2.0}, vio)
    assert decoded == Point(1, 2.0)


def test_a_file_travels_through_the_blob_store(tmp_path, vio):
    src = tmp_path / "data.txt"
    src.write_text("payload")
    literal, decoded = roundtrip(File, File(src), vio)
    assert literal["uri"].startswith(vio.blobs.url)
    src.unlink()  # the decoded file must come from the blob store, not the original path
    assert isinstance(decoded, File)
    assert decoded.read_text() == "payload"
    assert decoded.name == "data.txt"


def test_a_file_may_be_given_as_a_path_string(tmp_path, vio):
    src = tmp_path / "data.bin"
    src.write_bytes(b"\x01\x02")
    _, decoded = roundtrip(File, str(src), vio)
    assert decoded.read_bytes() == b"\x01\x02"


def test_a_missing_file_is_a_type_mismatch(tmp_path, vio):
    encode, _ = engine().codec(File, vio)
    with pytest.raises(TypeMismatchError, match="does not exist"):
        encode(File(tmp_path / "nope.txt"))


def test_a_directory_travels_with_all_its_files(tmp_path, vio):
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    _, decoded = roundtrip(Directory, Directory(src), vio)
    assert isinstance(decoded, Directory)
    files = {p.relative_to(decoded.path).as_posix(): p.read_text() for p in decoded.files()}
    assert files == {"a.txt": "A", "sub/b.txt": "B"}


def test_a_pydantic_model_with_a_nested_file_uploads_the_file(tmp_path, vio):
    src = tmp_path / "report.csv"
    src.write_text("a,b\n1,2\n")
    literal, decoded = roundtrip(Report, Report(title="q1", attachment=File(src)), vio)
    assert literal["title"] == "q1"
    assert literal["attachment"]["uri"].startswith(vio.blobs.url)
    src.unlink()
    assert decoded.title == "q1"
    assert decoded.attachment.read_text() == "a,b\n1,2\n"


def test_a_pandas_frame_is_stored_as_parquet(vio):
    df = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.5, 2.5], "s": ["a", "b", None]})
    literal, decoded = roundtrip(pd.DataFrame, df, vio)
    assert literal["format"] == "parquet" and literal["rows"] == 3
    assert vio.blobs.read_bytes(literal["uri"])[:4] == b"PAR1"
    pd.testing.assert_frame_equal(decoded, df)


def test_a_pandas_frame_keeps_a_meaningful_index(vio):
    df = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"], name="key"))
    _, decoded = roundtrip(pd.DataFrame, df, vio)
    pd.testing.assert_frame_equal(decoded, df)


def test_a_pyarrow_table_is_stored_as_parquet(vio):
    table = pa.table({"x": [1, 2], "name": ["a", "b"]})
    literal, decoded = roundtrip(pa.Table, table, vio)
    assert literal["format"] == "parquet" and literal["rows"] == 2
    assert vio.blobs.read_bytes(literal["uri"])[:4] == b"PAR1"
    assert isinstance(decoded, pa.Table) and decoded.equals(table)


def test_a_pandas_frame_decodes_as_a_pyarrow_table(vio):
    encode, _ = engine().codec(pd.DataFrame, vio)
    _, decode = engine().codec(pa.Table, vio)
    decoded = decode(encode(pd.DataFrame({"x": [1, 2, 3]})))
    assert isinstance(decoded, pa.Table)
    assert decoded.column_names == ["x"]
    assert decoded.column("x").to_pylist() == [1, 2, 3]


def test_a_pyarrow_table_decodes_as_a_pandas_frame(vio):
    encode, _ = engine().codec(pa.Table, vio)
    _, decode = engine().codec(pd.DataFrame, vio)
    decoded = decode(encode(pa.table({"x": [1, 2], "y": ["a", "b"]})))
    assert isinstance(decoded, pd.DataFrame)
    pd.testing.assert_frame_equal(decoded, pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))


# -- type errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tp, value, expected, actual",
    [
        (int, "7", "int", "str"),
        (int, 1.5, "int", "float"),
        (int, True, "int", "bool"),
        (float, "1.5", "float", "str"),
        (float, False, "float", "bool"),
        (bool, 1, "bool", "int"),
        (str, 3, "str", "int"),
        (bytes, "abc", "bytes", "str"),
        (dt.datetime, dt.date(2024, 1, 1), "datetime", "date"),
        (dt.date, dt.datetime(2024, 1, 1), "date", "datetime"),
        (dt.timedelta, 5, "timedelta", "int"),
        (list[int], 3, "list", "int"),
        (list[int], [1, "two"], "int", "str"),
        (dict[str, int], [1], "dict", "list"),
        (int | None, "x", "int", "str"),
        (Point, 3, "Point", "int"),
        (Reading, "r", "Reading", "str"),
        (File, 3, "File", "int"),
        (pd.DataFrame, {"x": [1]}, "data frame", "dict"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_a_value_of_the_wrong_type_is_a_type_mismatch_naming_both_types(tp, value, expected, actual, vio):
    encode, _ = engine().codec(tp, vio)
    with pytest.raises(TypeMismatchError) as info:
        encode(value)
    message = str(info.value)
    assert f"expected {expected}" in message or f"expected a {expected}" in message
    assert actual in message


def test_an_unknown_enum_value_is_a_type_mismatch_listing_the_members(vio):
    encode, _ = engine().codec(Colour, vio)
    with pytest.raises(TypeMismatchError, match=r"expected one of \['red', 'green'\] \(Colour\), got 'blue'"):
        encode("blue")


def test_a_dict_key_of_the_wrong_type_is_a_type_mismatch(vio):
    encode, _ = engine().codec(dict[int, int], vio)
    with pytest.raises(TypeMismatchError, match="int"):
        encode({"one": 1})


@pytest.mark.parametrize(
    "tp, value",
    [(Point, {"x": 1, "z": 2.0}), (Reading, {"sensor": "s", "values": ["not a number"], "taken": "?"})],
    ids=["dataclass-unknown-field", "pydantic-invalid-field"],
)
def test_a_dict_that_does_not_fit_a_struct_is_a_type_mismatch(tp, value, vio):
    encode, _ = engine().codec(tp, vio)
    with pytest.raises(TypeMismatchError, match=tp.__name__):
        encode(value)


def test_encode_values_names_where_and_which_value_is_wrong(vio):
    with pytest.raises(TypeMismatchError) as info:
        encode_values({"n": "ten"}, {"n": int}, vio, what="output")
    assert str(info.value) == "task t: output 'n': expected int, got str 'ten'"


def test_encode_values_reports_a_missing_value(vio):
    with pytest.raises(TypeMismatchError, match="task t: input 'n' is missing"):
        encode_values({}, {"n": int}, vio, what="input")


# -- castability ---------------------------------------------------------------------------


def castable(src: Any, dst: Any) -> bool:
    eng = engine()
    return eng.castable(eng.spec(src), eng.spec(dst))


@pytest.mark.parametrize(
    "src, dst",
    [
        (int, int),
        (int, float),
        (int, int | None),
        (str, str | None),
        (int, float | None),
        (int | None, float | None),
        (list[int], list[float]),
        (list[int], list[int | None]),
        (dict[str, int], dict[str, float]),
        (pd.DataFrame, pa.Table),
        (pa.Table, pd.DataFrame),
        (pd.DataFrame, typed_flows.DataFrame[typed_flows.Positive]),
        (Point, Vector),
    ],
    ids=repr,
)
def test_castable(src, dst):
    assert castable(src, dst)


@pytest.mark.parametrize(
    "src, dst",
    [
        (float, int),
        (int | None, int),
        (str, int),
        (bool, int),
        (list[float], list[int]),
        (list[int], int),
        (dict[str, int], dict[int, int]),
        (Point, Labelled),
        (File, Directory),
        (int, pd.DataFrame),
    ],
    ids=repr,
)
def test_not_castable(src, dst):
    assert not castable(src, dst)


# -- offloading large values ---------------------------------------------------------------


def test_a_small_value_stays_inline(vio):
    literals = encode_values({"xs": list(range(100))}, {"xs": list[int]}, vio, what="output")
    assert literals == {"xs": list(range(100))}


def test_a_large_list_is_offloaded_to_the_blob_store_and_loaded_back(vio):
    xs = list(range(300_000))
    assert len(json.dumps(xs)) > INLINE_LIMIT
    literals = encode_values({"xs": xs}, {"xs": list[int]}, vio, what="output")
    assert set(literals["xs"]) == {"$ref"}
    assert vio.blobs.exists(literals["xs"]["$ref"])
    assert len(json.dumps(literals)) < 1000
    assert decode_values(literals, {"xs": list[int]}, vio, what="input") == {"xs": xs}


def test_a_large_string_is_offloaded_to_the_blob_store_and_loaded_back(vio):
    text = "x" * (INLINE_LIMIT + 1)
    literals = encode_values({"s": text}, {"s": str}, vio, what="output")
    assert set(literals["s"]) == {"$ref"}
    assert decode_values(literals, {"s": str}, vio, what="input") == {"s": text}


def test_a_large_dict_of_structs_is_offloaded_and_decoded_to_structs(vio):
    points = {str(i): Point(i, i / 2) for i in range(40_000)}
    literals = encode_values({"p": points}, {"p": dict[str, Point]}, vio, what="output")
    assert set(literals["p"]) == {"$ref"}
    assert decode_values(literals, {"p": dict[str, Point]}, vio, what="input") == {"p": points}


# -- pandera -------------------------------------------------------------------------------


def test_a_valid_frame_passes_its_pandera_schema():
    execution = plait.run(typed_flows.validated, {"values": [1, 0, 3]})
    assert execution.phase == Phase.SUCCEEDED
    assert execution.outputs == {"o0": 4}


def test_a_frame_that_breaks_its_pandera_schema_fails_the_consuming_task():
    execution = plait.run(typed_flows.validated, {"values": [1, -2, 3]})
    assert execution.phase == Phase.FAILED
    assert execution.failed_node == "sum_positive"
    error = execution.error or ""
    assert "typed_flows.sum_positive" in error
    assert "schema Positive" in error
    assert "column 'x' failed greater_than_or_equal_to(0)" in error
    assert "-2" in error


def test_an_output_that_breaks_its_pandera_schema_fails_once_and_is_not_retried(tmp_path, fast_retries):
    marker = tmp_path / "attempts"
    execution = plait.run(typed_flows.invalid_output, {"marker": str(marker)}, options=fast_retries())
    assert execution.phase == Phase.FAILED and execution.failed_node == "make_invalid"
    assert marker.read_text().splitlines() == ["attempt"]  # retries=3, yet one attempt
    assert len(execution.result.state.nodes["make_invalid"].attempts) == 1
    error = execution.error or ""
    assert "not retryable" in error
    assert "task typed_flows.make_invalid" in error and "schema Positive" in error
    assert "column 'x' failed greater_than_or_equal_to(0)" in error and "-5" in error


def test_an_input_that_breaks_its_pandera_schema_is_not_retried(fast_retries):
    execution = plait.run(typed_flows.invalid_input, {"values": [3, -1]}, options=fast_retries())
    assert execution.phase == Phase.FAILED and execution.failed_node == "sum_positive_retried"
    assert len(execution.result.state.nodes["sum_positive_retried"].attempts) == 1
    assert "column 'x' failed greater_than_or_equal_to(0)" in (execution.error or "")


@dataclasses.dataclass
class Attached:
    title: str
    attachment: File


def test_a_dataclass_with_a_nested_file_uploads_the_file(tmp_path, vio):
    src = tmp_path / "notes.txt"
    src.write_text("dataclass field")
    literal, decoded = roundtrip(Attached, Attached("n", File(src)), vio)
    assert literal["attachment"]["uri"].startswith(vio.blobs.url)
    src.unlink()
    assert isinstance(decoded, Attached) and decoded.attachment.read_text() == "dataclass field"
