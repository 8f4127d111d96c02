"""A SageMaker training job outlives an engine killed with ``kill -9``: the resumed engine attaches.

The engine is a real ``plait run`` process (see ``tests/engine_process.py``); the job runs in
the moto stand-in, which logs every job it creates (``StandIn.created``), so "attached, not
started again" is counted where the job lives. Two crashes are covered: after the engine
recorded the job's handle (the resumed engine polls that handle), and after SageMaker
created the job but before its answer reached the engine (the handle was never recorded, so
the resumed engine submits the same attempt again, and the plugin must find the job by the
name it derives from the attempt id).
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import engine_process

if TYPE_CHECKING:  # conftest by name is ambiguous when several plugin folders run at once
    from conftest import StandIn

FLOWS = str(Path(__file__).parent / "sagemaker_flows.py")
NODE = "sm_aws_fit"
MODEL = {"o0": "trained in the stand-in\n"}


def _resume_and_check(stand_in: StandIn, store: engine_process.Store, xid: str, job: str) -> None:
    stand_in.rule(job, status="Completed")  # the job finishes while no engine watches it
    stand_in.rule(status="Completed")  # so does any job created from now on: a wrong one fails the test fast
    resumed = engine_process.resume(xid)
    assert resumed.returncode == 0, resumed.stdout
    events = store.events(xid)
    assert engine_process.outcome(events).data["outputs"] == MODEL
    assert stand_in.created() == [job], "the resumed engine created a second training job instead of attaching"
    assert stand_in.stopped() == [], "the resumed engine stopped the job it should have attached to"
    assert {e.data["attempt"] for e in events if e.kind == "attempt" and e.data["node"] == NODE} == {1}


def test_a_job_whose_handle_was_recorded_is_polled_after_a_crash_not_created_again(stand_in):
    store = engine_process.Store()
    engine = engine_process.cli("run", f"{FLOWS}:fit_on_aws", "--n", "3")
    try:
        xid = engine_process.wait_for(store.execution, "the engine did not create its execution", run=engine)
        handles = engine_process.wait_for(lambda: engine_process.handles(store.events(xid), NODE),
                                          "the training job's handle was not recorded", run=engine)
    finally:
        engine.kill()
    job = handles[0]["job"]
    assert stand_in.created() == [job]
    _resume_and_check(stand_in, store, xid, job)
    store.close()


def test_a_job_created_just_before_a_crash_is_attached_to_by_its_name(stand_in):
    store = engine_process.Store()
    with HeldAnswers(stand_in.endpoint, "SageMaker.CreateTrainingJob") as proxy:
        engine = engine_process.cli("run", f"{FLOWS}:fit_on_aws", "--n", "3", env={"AWS_ENDPOINT_URL": proxy.endpoint})
        try:
            xid = engine_process.wait_for(store.execution, "the engine did not create its execution", run=engine)
            engine_process.wait_for(proxy.held.is_set, "the engine did not create the training job", run=engine)
        finally:
            engine.kill()
    created = stand_in.created()
    assert len(created) == 1, created
    assert not engine_process.handles(store.events(xid), NODE), \
        "the handle reached the store before the crash: this test would not exercise submitting again"
    _resume_and_check(stand_in, store, xid, created[0])
    store.close()


class HeldAnswers:
    """An HTTP proxy before the stand-in that holds back the answers to one AWS operation.

    Everything is forwarded; a request whose ``X-Amz-Target`` is ``target`` is carried out by
    the stand-in, but its answer is kept until the proxy closes: the service has done the
    work, and the caller has not heard of it, as when a process dies with a request in flight.
    """

    def __init__(self, upstream: str, target: str) -> None:
        self.held = threading.Event()
        self._release = threading.Event()
        where = urlsplit(upstream)
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return body

            def forward(self) -> None:
                body = self._body()
                skip = {"host", "transfer-encoding", "content-length", "connection", "expect"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body if self.command not in ("GET", "HEAD") else None,
                                 headers=headers)
                    answer = conn.getresponse()
                    data = answer.read()
                    kept = [(k, v) for k, v in answer.getheaders()
                            if k.lower() not in ("transfer-encoding", "connection", "server", "date")
                            and (k.lower() != "content-length" or self.command == "HEAD")]
                finally:
                    conn.close()
                if self.headers.get("X-Amz-Target") == target:
                    proxy.held.set()
                    proxy._release.wait(120)
                self.send_response(answer.status)
                for k, v in kept:
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HeldAnswers:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._release.set()  # a held answer goes to a caller that is gone
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
