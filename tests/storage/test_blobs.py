"""The blob store: content-addressed files, directories and bytes, in a local folder, on S3, on GCS.

The S3 tests talk to a real moto server (a separate process speaking the S3 protocol over
HTTP) through s3fs, and the GCS tests to gcp-storage-emulator (tests/standins/gcs.py) through
gcsfs, exactly as plait does in production; nothing is mocked in-process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import flows
import fsspec.config
import pandas as pd
import plait
import pytest
from plait.model.errors import PlaitError
from plait.model.status import Phase
from plait.storage.blobs import BlobStore
from plait.types.engine import INLINE_LIMIT, ValueIO, decode_values, encode_values

TESTS = Path(__file__).resolve().parents[1]
MOTO_MISSING = 'the S3 tests need the moto server: pip install "moto[server]"'
GCS_MISSING = "the GCS tests need gcsfs and its stand-in: pip install gcsfs gcp-storage-emulator"


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def make_tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.bin").write_bytes(b"\x00\x01beta")
    return root


def tree_contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in stored_files(root)}


# ---------------------------------------------------------------------------------------
# A local folder
# ---------------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> BlobStore:
    return BlobStore(str(tmp_path / "blobs"))


def test_a_local_path_becomes_a_file_url(tmp_path: Path):
    assert BlobStore(str(tmp_path / "blobs")).url == f"file://{tmp_path / 'blobs'}"


def test_put_bytes_returns_a_uri_that_reads_back_the_same_bytes(local: BlobStore):
    uri = local.put_bytes(b"hello blobs", ".txt")
    assert uri.startswith(local.url + "/cas/")
    assert uri.endswith(".txt")
    assert local.read_bytes(uri) == b"hello blobs"


def test_the_same_bytes_get_the_same_uri_and_are_stored_once(local: BlobStore, tmp_path: Path):
    first = local.put_bytes(b"same content")
    second = local.put_bytes(b"same content")
    assert first == second
    assert len(stored_files(tmp_path / "blobs")) == 1


def test_different_bytes_get_different_uris(local: BlobStore):
    assert local.put_bytes(b"one") != local.put_bytes(b"two")


def test_put_file_is_addressed_by_content_and_keeps_the_file_name(local: BlobStore, tmp_path: Path):
    src = tmp_path / "report.csv"
    src.write_text("a,b\n1,2\n")
    uri = local.put_file(src)
    assert uri.startswith(local.url + "/cas/")
    assert uri.endswith("/report.csv")
    back = local.get_file(uri, tmp_path / "back" / "report.csv")
    assert back.read_text() == "a,b\n1,2\n"


def test_a_file_with_the_same_content_is_stored_once(local: BlobStore, tmp_path: Path):
    src = tmp_path / "data.txt"
    src.write_text("payload")
    first = local.put_file(src)
    second = local.put_file(src)
    assert first == second
    assert len(stored_files(tmp_path / "blobs")) == 1


def test_put_dir_round_trips_every_file_with_its_relative_path(local: BlobStore, tmp_path: Path):
    src = make_tree(tmp_path / "tree")
    uri = local.put_dir(src)
    assert uri.endswith(".dir")
    back = local.get_dir(uri, tmp_path / "back")
    assert tree_contents(back) == tree_contents(src)  # and no .complete marker leaks out


def test_the_same_directory_gets_the_same_uri_and_is_stored_once(local: BlobStore, tmp_path: Path):
    src = make_tree(tmp_path / "tree")
    first = local.put_dir(src)
    copy = make_tree(tmp_path / "copy")
    second = local.put_dir(copy)
    assert first == second
    # two files and the completion marker, once
    assert len(stored_files(tmp_path / "blobs")) == 3


def test_changing_one_file_changes_the_directory_uri(local: BlobStore, tmp_path: Path):
    src = make_tree(tmp_path / "tree")
    before = local.put_dir(src)
    (src / "sub" / "b.bin").write_bytes(b"changed")
    assert local.put_dir(src) != before


def test_reading_a_missing_blob_names_it(local: BlobStore):
    missing = local.uri("cas", "00", "nothing-here")
    with pytest.raises(PlaitError, match="nothing-here"):
        local.read_bytes(missing)


def test_list_gives_the_uris_under_a_prefix_sorted_and_none_for_a_missing_one(local: BlobStore):
    for name in ("run/error-1.json", "run/error-0.json", "run/result.json", "run/sub/x", "runs/y"):
        local.write_bytes(local.uri(name), b"{}")
    assert local.list(local.uri("run/error-")) == [local.uri("run/error-0.json"), local.uri("run/error-1.json")]
    assert local.list(local.uri("run") + "/") == [local.uri(n) for n in ("run/error-0.json", "run/error-1.json",
                                                                        "run/result.json", "run/sub/x")]
    assert local.list(local.uri("missing/error-")) == []


# ---------------------------------------------------------------------------------------
# S3, through a real moto server
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(args: list[str], url: str, name: str, missing: str, log: Path) -> Iterator[None]:
    """Run a stand-in server in its own process until the caller is done; wait until ``url`` answers."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the {name} exited with code {proc.returncode}:\n{log.read_text()}\n"
                            f"{missing}", pytrace=False)
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers HTTP, which is all we wait for
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the {name} did not answer on {url} within 30s:\n"
                                f"{log.read_text()}", pytrace=False)
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server in its own process, for the whole module."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.fail(MOTO_MISSING, pytrace=False)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with serve([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
               endpoint + "/moto-api/", "moto server", MOTO_MISSING, tmp_path_factory.mktemp("moto") / "server.log"):
        yield endpoint


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy credentials and the moto endpoint, as a user would set them in the environment."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": moto_endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # fsspec reads FSSPEC_* variables once, when it is first imported; this process imported it
    # long ago, so give its live configuration the same value (a fresh process reads the variable,
    # see test_a_fresh_process_finds_the_s3_endpoint_in_FSSPEC_S3_ENDPOINT_URL).
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": moto_endpoint})
    return env


@pytest.fixture
def s3(s3_env: dict[str, str], moto_endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=moto_endpoint)


@pytest.fixture
def bucket(s3) -> str:
    name = f"plait-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def test_a_fresh_process_finds_the_s3_endpoint_in_FSSPEC_S3_ENDPOINT_URL(
        s3_env: dict[str, str], s3, bucket: str):
    code = textwrap.dedent(f"""
        from plait.storage.blobs import BlobStore
        print(BlobStore("s3://{bucket}/prefix").put_bytes(b"from a fresh process"))
    """)
    env = {**os.environ, **s3_env}
    proc = subprocess.run(check=False, args=[sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    uri = proc.stdout.strip()
    key = uri.removeprefix(f"s3://{bucket}/")
    assert keys(s3, bucket) == [key]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"from a fresh process"


@pytest.fixture
def workers_started_earlier():
    """Start the worker processes' forkserver before the S3 settings exist.

    Workers fork from a server that keeps the environment it started with; the engine must
    pass later changes (endpoints, credentials) on to them.
    """
    assert plait.run(flows.arithmetic, {"a": 1}).outputs == {"o0": 6}


def test_a_workflow_passes_a_data_frame_between_workers_through_s3(
        workers_started_earlier, s3, bucket: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLAIT_BLOB_URL", f"s3://{bucket}/run")
    execution = plait.run(flows.frames, {"n": 10})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": sum(i * 0.5 for i in range(10))}
    assert [k for k in keys(s3, bucket, "run/cas/") if k.endswith(".parquet")], keys(s3, bucket)


def test_a_workflow_passes_a_file_between_workers_through_s3(
        workers_started_earlier, s3, bucket: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLAIT_BLOB_URL", f"s3://{bucket}/run")
    execution = plait.run(flows.files, {"text": "x"})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": "X"}
    written = [k for k in keys(s3, bucket, "run/cas/") if k.endswith("/out.txt")]
    assert len(written) == 1, keys(s3, bucket)
    assert s3.get_object(Bucket=bucket, Key=written[0])["Body"].read() == b"x"


# ---------------------------------------------------------------------------------------
# GCS, through gcp-storage-emulator
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The GCS stand-in in its own process, for the whole module."""
    if importlib.util.find_spec("gcsfs") is None or importlib.util.find_spec("gcp_storage_emulator") is None:
        pytest.fail(GCS_MISSING, pytrace=False)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with serve([sys.executable, str(TESTS / "standins" / "gcs.py"), str(port)], endpoint + "/",
               "GCS emulator", GCS_MISSING, tmp_path_factory.mktemp("gcs") / "server.log"):
        yield endpoint


@pytest.fixture
def gcs_env(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The emulator's address and anonymous access, as a user would set them in the environment."""
    env = {
        "STORAGE_EMULATOR_HOST": gcs_endpoint,  # gcsfs and google-cloud-storage both read it
        "FSSPEC_GCS_TOKEN": "anon",
        # gcsfs's default filesystem first asks the Storage Control API (gRPC, which the
        # emulator does not serve) for each bucket's layout, and waits 60 s for an answer.
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "gcs", {"token": "anon"})  # see s3_env
    import gcsfs

    if gcsfs.GCSFileSystem is not gcsfs.core.GCSFileSystem:
        pytest.fail("gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set, so it "
                    "would ask the emulator for the Storage Control API", pytrace=False)
    return env


@pytest.fixture
def gcs(gcs_env: dict[str, str]):
    """The real google-cloud-storage client, to see what plait wrote without plait."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(credentials=AnonymousCredentials(), project="plait-tests")


@pytest.fixture
def gcs_bucket(gcs) -> str:
    name = f"plait-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(name)
    return name


def objects(gcs, bucket: str, prefix: str = "") -> list[str]:
    return sorted(blob.name for blob in gcs.list_blobs(bucket, prefix=prefix))


def test_a_fresh_process_finds_the_gcs_emulator_in_STORAGE_EMULATOR_HOST(
        gcs_env: dict[str, str], gcs, gcs_bucket: str):
    code = textwrap.dedent(f"""
        from plait.storage.blobs import BlobStore
        print(BlobStore("gs://{gcs_bucket}/prefix").put_bytes(b"from a fresh process"))
    """)
    proc = subprocess.run(check=False, args=[sys.executable, "-c", code], env={**os.environ, **gcs_env},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.strip().removeprefix(f"gs://{gcs_bucket}/")
    assert objects(gcs, gcs_bucket) == [key]
    assert gcs.bucket(gcs_bucket).blob(key).download_as_bytes() == b"from a fresh process"


# -- the same round trips on each object store ---------------------------------------------


@dataclass
class Bucket:
    """A fresh bucket on an object store's stand-in, and what is in it as its own client sees it."""

    url: str
    """``s3://name`` or ``gs://name``."""
    listing: Callable[[], list[str]]
    """Every object's key, sorted."""

    def key(self, uri: str) -> str:
        return uri.removeprefix(f"{self.url}/")


@pytest.fixture(params=["s3", "gcs"])
def remote(request: pytest.FixtureRequest) -> Bucket:
    if request.param == "s3":
        s3, name = request.getfixturevalue("s3"), request.getfixturevalue("bucket")
        return Bucket(f"s3://{name}", lambda: keys(s3, name))
    gcs, name = request.getfixturevalue("gcs"), request.getfixturevalue("gcs_bucket")
    return Bucket(f"gs://{name}", lambda: objects(gcs, name))


def test_put_bytes_on_an_object_store_reads_back_and_the_same_bytes_are_stored_once(remote: Bucket):
    store = BlobStore(f"{remote.url}/prefix")
    first = store.put_bytes(b"remote bytes", ".bin")
    assert store.put_bytes(b"remote bytes", ".bin") == first
    assert first.startswith(f"{remote.url}/prefix/cas/")
    assert store.read_bytes(first) == b"remote bytes"
    assert remote.listing() == [remote.key(first)]  # no temporary left


def test_put_file_on_an_object_store_round_trips_the_file(remote: Bucket, tmp_path: Path):
    store = BlobStore(f"{remote.url}/prefix")
    src = tmp_path / "model.txt"
    src.write_text("weights")
    uri = store.put_file(src)
    assert uri.endswith("/model.txt")
    assert store.put_file(src) == uri
    assert remote.listing() == [remote.key(uri)]
    assert store.get_file(uri, tmp_path / "back" / "model.txt").read_text() == "weights"


def test_put_dir_on_an_object_store_round_trips_the_tree(remote: Bucket, tmp_path: Path):
    store = BlobStore(f"{remote.url}/prefix")
    src = make_tree(tmp_path / "tree")
    uri = store.put_dir(src)
    prefix = remote.key(uri)
    assert remote.listing() == [f"{prefix}/.complete", f"{prefix}/a.txt", f"{prefix}/sub/b.bin"]
    back = store.get_dir(uri, tmp_path / "back")
    assert tree_contents(back) == tree_contents(src)


def test_list_on_an_object_store_gives_the_uris_under_a_prefix(remote: Bucket):
    store = BlobStore(f"{remote.url}/prefix")
    for name in ("run/error-1.json", "run/error-0.json", "run/result.json", "runs/y"):
        store.write_bytes(store.uri(name), b"{}")
    assert store.list(store.uri("run/error-")) == [store.uri("run/error-0.json"), store.uri("run/error-1.json")]
    assert store.list(store.uri("run") + "/") == [store.uri(n) for n in ("run/error-0.json", "run/error-1.json",
                                                                        "run/result.json")]
    assert store.read_bytes(store.list(store.uri("run/error-"))[0]) == b"{}"
    assert store.list(store.uri("missing/error-")) == []


def test_gcs_holds_data_frames_and_large_values_by_reference(gcs, gcs_bucket: str):
    io = ValueIO(BlobStore(f"gs://{gcs_bucket}/prefix"), where="test")
    frame = pd.DataFrame({"i": range(100), "x": [i * 0.5 for i in range(100)]})
    big = [str(i) for i in range(INLINE_LIMIT // 4)]  # over the inline limit once JSON-encoded
    types = {"frame": pd.DataFrame, "big": list[str]}
    literals = encode_values({"frame": frame, "big": big}, types, io, what="input")
    stored = objects(gcs, gcs_bucket)
    assert [k for k in stored if k.endswith(".parquet")], stored
    assert literals["big"] == {"$ref": f"gs://{gcs_bucket}/" + next(k for k in stored if k.endswith(".json"))}
    back = decode_values(literals, types, io, what="input")
    pd.testing.assert_frame_equal(back["frame"], frame)
    assert back["big"] == big


def test_a_workflow_passes_a_data_frame_between_workers_through_gcs(
        workers_started_earlier, gcs, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLAIT_BLOB_URL", f"gs://{gcs_bucket}/run")
    execution = plait.run(flows.frames, {"n": 10})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": sum(i * 0.5 for i in range(10))}
    assert [k for k in objects(gcs, gcs_bucket, "run/cas/") if k.endswith(".parquet")], objects(gcs, gcs_bucket)
