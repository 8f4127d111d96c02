"""The blob store: content-addressed files, directories and bytes, in a local folder or on S3.

The S3 tests talk to a real moto server (a separate process speaking the S3 protocol over
HTTP) through s3fs, exactly as plait does in production; nothing is mocked in-process.
"""

from __future__ import annotations

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
from pathlib import Path

import flows
import fsspec.config
import plait
import pytest
from plait.blobs import BlobStore
from plait.errors import PlaitError
from plait.tasktype import Phase

MOTO_MISSING = 'the S3 tests need the moto server: pip install "moto[server]"'


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


# ---------------------------------------------------------------------------------------
# S3, through a real moto server
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory):
    """A moto S3 server in its own process, for the whole module."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.fail(MOTO_MISSING, pytrace=False)
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the moto server exited with code {proc.returncode}:\n{log.read_text()}\n"
                            f"{MOTO_MISSING}", pytrace=False)
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers HTTP, which is all we wait for
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the moto server did not answer on {endpoint} within 30s:\n"
                                f"{log.read_text()}", pytrace=False)
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
        from plait.blobs import BlobStore
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


def test_s3_put_bytes_reads_back_and_the_same_bytes_are_stored_once(s3, bucket: str):
    store = BlobStore(f"s3://{bucket}/prefix")
    first = store.put_bytes(b"s3 bytes", ".bin")
    second = store.put_bytes(b"s3 bytes", ".bin")
    assert first == second
    assert first.startswith(f"s3://{bucket}/prefix/cas/")
    assert store.read_bytes(first) == b"s3 bytes"
    assert keys(s3, bucket) == [first.removeprefix(f"s3://{bucket}/")]


def test_s3_put_file_round_trips_the_file(s3, bucket: str, tmp_path: Path):
    store = BlobStore(f"s3://{bucket}/prefix")
    src = tmp_path / "model.txt"
    src.write_text("weights")
    uri = store.put_file(src)
    assert uri.endswith("/model.txt")
    assert store.put_file(src) == uri
    assert keys(s3, bucket) == [uri.removeprefix(f"s3://{bucket}/")]
    assert store.get_file(uri, tmp_path / "back" / "model.txt").read_text() == "weights"


def test_s3_put_dir_round_trips_the_tree(s3, bucket: str, tmp_path: Path):
    store = BlobStore(f"s3://{bucket}/prefix")
    src = make_tree(tmp_path / "tree")
    uri = store.put_dir(src)
    prefix = uri.removeprefix(f"s3://{bucket}/")
    assert keys(s3, bucket) == [f"{prefix}/.complete", f"{prefix}/a.txt", f"{prefix}/sub/b.bin"]
    back = store.get_dir(uri, tmp_path / "back")
    assert tree_contents(back) == tree_contents(src)


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
