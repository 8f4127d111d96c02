"""A node's file is served only from inside the server's blob store: an input's address that
climbs out of it (``..``) names no file, whatever the execution was launched with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_harness import Console
from harness import wait_for
from plait.storage.blobs import BlobStore

FLOWS = Path(__file__).parent / "value_flows.py"


@pytest.fixture(scope="module")
def kept(console: Console, tmp_path_factory: pytest.TempPathFactory) -> Console:
    console.register_copy(FLOWS, tmp_path_factory.mktemp("source"))
    return console


def launched(console: Console, uri: str) -> str:
    with console.api() as api:
        made = api.post("/projects/default/domains/development/executions",
                        json={"workflow": "value_flows.kept", "inputs": {"f": {"uri": uri}}})
        assert made.status_code == 201, made.text
        xid = str(made.json()["execution_id"])
        wait_for(lambda: api.get(f"/executions/{xid}").json()["phase"] == "succeeded", f"{xid} to succeed",
                 servers=[console.server])
    return xid


def test_an_input_file_inside_the_blob_store_is_served(page: Any, kept: Console) -> None:
    blobs = BlobStore(str(kept.server.home / "blobs"))
    xid = launched(kept, blobs.put_bytes(b"field notes", ".txt"))
    answer = page.request.get(f"{kept.url}/executions/{xid}/value/keep?side=inputs&name=f")
    assert answer.status == 200 and answer.body() == b"field notes"


@pytest.mark.parametrize("escape", ["/../server.db", "/cas/../../server.db", "/./server.db"])
def test_an_address_climbing_out_of_the_blob_store_is_not_served(page: Any, kept: Console, escape: str) -> None:
    assert (kept.server.home / "server.db").exists()
    xid = launched(kept, BlobStore(str(kept.server.home / "blobs")).url + escape)
    answer = page.request.get(f"{kept.url}/executions/{xid}/value/keep?side=inputs&name=f")
    assert answer.status == 404 and "is not a file in this server" in answer.text()
