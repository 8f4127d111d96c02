"""Which typed values are datasets, and their names, checked against OpenLineage's naming
conventions as the openlineage-python package implements them (``openlineage.client.naming``)."""

from __future__ import annotations

from openlineage.client.naming import dataset as naming
from plait.model.lineage import TABLE_REF, Dataset, dataset_name, datasets, has_datasets
from plait.model.spec import Interface, TaskTemplate
from plait.model.typespec import TypeSpec

FILE, FRAME, INT = TypeSpec(kind="file"), TypeSpec(kind="dataframe"), TypeSpec(kind="int")
TABLE = TypeSpec(kind="struct", ref=TABLE_REF, fields={"name": TypeSpec(kind="str"), "connection": TypeSpec(kind="str")})


def named(convention: naming.DatasetNaming) -> tuple[str, str]:
    return convention.get_namespace(), convention.get_name()


def test_blob_uris_are_named_as_openlineage_names_files_and_objects():
    assert dataset_name("file:///data/in/x.parquet") == named(naming.LocalFileSystem("/data/in/x.parquet"))
    assert dataset_name("s3://bucket/cas/ab/x.parquet") == named(naming.S3("bucket", "cas/ab/x.parquet"))
    assert dataset_name("gs://bucket/runs/model.tar.gz") == named(naming.GCS("bucket", "runs/model.tar.gz"))


def test_a_bigquery_table_output_is_named_as_openlineage_names_bigquery_tables():
    found = datasets({"t": {"name": "proj.ds.totals", "connection": "bigquery"}}, {"t": TABLE})
    assert [(d.namespace, d.name, d.kind) for d in found] == [(*named(naming.BigQuery("proj", "ds", "totals")), "table")]


def test_datasets_are_found_inside_lists_dicts_optionals_and_dataclasses_and_nothing_else_is():
    types = {
        "files": TypeSpec(kind="list", args=(FILE,)),
        "frames": TypeSpec(kind="dict", args=(TypeSpec(kind="str"), FRAME)),
        "maybe": TypeSpec(kind="optional", args=(FILE,)),
        "nothing": TypeSpec(kind="optional", args=(FILE,)),
        "pair": TypeSpec(kind="struct", ref="m.Pair", fields={"left": FILE, "n": INT}),
        "big": TypeSpec(kind="list", args=(FILE,)),
        "n": INT,
    }
    literals = {
        "files": [{"uri": "file:///a"}, {"uri": "file:///b"}],
        "frames": {"x": {"uri": "s3://bk/x.parquet", "format": "parquet", "rows": 7}},
        "maybe": {"uri": "file:///c"}, "nothing": None,
        "pair": {"left": {"uri": "file:///d"}, "n": 3},
        "big": {"$ref": "file:///blobs/cas/list.json"},  # a large list moved to the blob store: not read
        "n": 5,
    }
    assert datasets(literals, types) == [
        Dataset("file", "/a", "files[0]", "file"), Dataset("file", "/b", "files[1]", "file"),
        Dataset("s3://bk", "x.parquet", "frames['x']", "dataframe", 7),
        Dataset("file", "/c", "maybe", "file"), Dataset("file", "/d", "pair.left", "file")]


def test_only_a_task_whose_interface_can_hold_a_dataset_has_its_map_items_recorded():
    def task(**types: TypeSpec) -> TaskTemplate:
        return TaskTemplate(name="t", interface=Interface(inputs=types))

    assert not has_datasets(task(n=INT, names=TypeSpec(kind="list", args=(TypeSpec(kind="str"),))))
    assert has_datasets(task(n=INT, out=TypeSpec(kind="optional", args=(FRAME,))))
    assert has_datasets(task(t=TABLE))
