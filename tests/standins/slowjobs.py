"""A tiny BigQuery REST stub whose jobs stay RUNNING for a few polls and honour cancel.

Why: bqemulator executes every job synchronously inside ``jobs.insert``; a job is already
``DONE`` in the insert response, so a plugin's poll / cancel / re-attach code paths never run
against it. This stub speaks just enough of BigQuery's REST API v2 for the real
``google-cloud-bigquery`` client:

* ``POST /bigquery/v2/projects/{p}/jobs`` (jobs.insert): registers the job as ``PENDING``.
  A second insert with the same job id answers HTTP 409 ``reason: "duplicate"`` like
  BigQuery, which the client raises as ``google.api_core.exceptions.Conflict`` when the
  caller passed ``job_id=`` (bqemulator itself silently re-runs and overwrites the job).
* ``GET  /bigquery/v2/projects/{p}/jobs/{id}`` (jobs.get, what ``job.reload()``,
  ``job.done()`` and ``client.get_job()`` call): each call is one *poll*. The first
  ``running_polls`` polls answer ``RUNNING``; the next answers ``DONE``.
* ``POST /bigquery/v2/projects/{p}/jobs/{id}/cancel`` (jobs.cancel): answers the job as it is
  (still ``RUNNING``, as BigQuery does); the next poll answers ``DONE`` with
  ``errorResult: {"reason": "stopped"}``. Cancelling a finished job changes nothing.
* ``GET  /bigquery/v2/projects/{p}/queries/{id}`` (jobs.getQueryResults, used by
  ``job.result()``): ``jobComplete: false`` while the job runs (after a short sleep, so the
  client's wait loop does not spin), then the results.

When the stub has a ``backend`` (the bqemulator endpoint), a query job that reaches ``DONE``
is really executed there under the same job id, so ``job.result()`` / ``to_arrow()`` return
real rows and SQL errors come back as bqemulator reports them; every request the stub does
not handle itself (datasets, tables, uploads, jobs.query...) is forwarded unchanged. Without
a backend a finished job has an empty result.

Every request is recorded in ``calls`` (``Call.kind`` is e.g. ``"jobs.insert"``,
``"jobs.get"``, ``"jobs.cancel"``, ``"jobs.getQueryResults"``, ``"forward"``) so tests can
assert e.g. that a job was inserted exactly once and that cancel was called.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PREFIX = "/bigquery/v2"
_JOBS = re.compile(r"^/bigquery/v2/projects/([^/]+)/jobs/?$")
_JOB = re.compile(r"^/bigquery/v2/projects/([^/]+)/jobs/([^/]+)$")
_CANCEL = re.compile(r"^/bigquery/v2/projects/([^/]+)/jobs/([^/]+)/cancel$")
_RESULTS = re.compile(r"^/bigquery/v2/projects/([^/]+)/queries/([^/]+)$")
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "host", "accept-encoding", "content-length", "content-encoding",
}


@dataclass
class Call:
    """One request the stub received."""

    kind: str  # jobs.insert | jobs.get | jobs.cancel | jobs.getQueryResults | forward
    method: str
    path: str
    params: dict[str, list[str]]
    body: Any = None  # parsed JSON body, raw bytes, or None
    job_id: str | None = None
    status: int = 0  # HTTP status answered


@dataclass
class StubJob:
    project: str
    job_id: str
    location: str
    resource: dict[str, Any]  # the jobs.insert request body
    polls_left: int
    error_result: dict[str, Any] | None = None
    state: str = "PENDING"
    cancel_requested: bool = False
    polls: int = 0
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    started_ms: int | None = None
    ended_ms: int | None = None
    backend_job: dict[str, Any] | None = None  # the backend's DONE job resource


class SlowJobsServer:
    """Threaded HTTP stub; ``endpoint`` goes into ``ClientOptions(api_endpoint=...)``."""

    def __init__(
        self,
        backend: str | None = None,
        *,
        running_polls: int = 3,
        project: str = "test-project",
        location: str = "US",
        results_wait_s: float = 0.05,
    ) -> None:
        self.backend = backend.rstrip("/") if backend else None
        self.running_polls = running_polls
        self.project = project
        self.location = location
        self.results_wait_s = results_wait_s
        self.calls: list[Call] = []
        self.jobs: dict[tuple[str, str], StubJob] = {}
        self._next_error: dict[str, Any] | None = None
        self._insert_failures: list[tuple[int, str]] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    # -- test controls -------------------------------------------------------------
    def set_running_polls(self, n: int) -> None:
        """Jobs inserted from now on answer RUNNING to ``n`` jobs.get polls, then DONE."""
        self.running_polls = n

    def fail_with(self, reason: str | None, message: str = "stub failure") -> None:
        """Jobs inserted from now on end ``DONE`` with this ``errorResult`` (None: succeed)."""
        self._next_error = None if reason is None else {"reason": reason, "message": message}

    def fail_next_inserts(self, n: int = 1, status: int = 500, reason: str = "backendError") -> None:
        """The next ``n`` jobs.insert requests answer an HTTP error without creating a job."""
        self._insert_failures.extend([(status, reason)] * n)

    def calls_of(self, kind: str, job_id: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.kind == kind and (job_id is None or c.job_id == job_id)]

    def job(self, job_id: str, project: str | None = None) -> StubJob:
        return self.jobs[(project or self.project, job_id)]

    def client(self, project: str | None = None):
        from standins.bqemu_process import make_client

        return make_client(self.endpoint, project or self.project)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> SlowJobsServer:
        stub = self

        class Handler(_Handler):
            server_stub = stub

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="slowjobs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SlowJobsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- job model -----------------------------------------------------------------
    def _job_resource(self, job: StubJob) -> dict[str, Any]:
        if job.backend_job is not None:
            return job.backend_job
        status: dict[str, Any] = {"state": job.state}
        if job.state == "DONE" and job.error_result is not None:
            status["errorResult"] = job.error_result
            status["errors"] = [job.error_result]
        stats: dict[str, Any] = {"creationTime": str(job.created_ms)}
        if job.started_ms is not None:
            stats["startTime"] = str(job.started_ms)
        if job.ended_ms is not None:
            stats["endTime"] = str(job.ended_ms)
        config = dict(job.resource.get("configuration") or {})
        return {
            "kind": "bigquery#job",
            "etag": f'"{job.job_id}-{job.polls}"',
            "id": f"{job.project}:{job.location}.{job.job_id}",
            "selfLink": f"{self.endpoint}{_PREFIX}/projects/{job.project}/jobs/{job.job_id}",
            "user_email": "slowjobs@stub.invalid",
            "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": job.location},
            "configuration": config,
            "status": status,
            "statistics": stats,
        }

    def _finish(self, job: StubJob) -> None:
        """Move a job to DONE (running it on the backend when there is one)."""
        job.state = "DONE"
        job.ended_ms = int(time.time() * 1000)
        if job.cancel_requested:
            job.error_result = {"reason": "stopped", "message": "Job execution was cancelled: User requested cancellation"}
            return
        if job.error_result is None and self.backend and "query" in job.resource.get("configuration", {}):
            status, _, body = self._forward("POST", f"{_PREFIX}/projects/{job.project}/jobs", {}, json.dumps(job.resource).encode(), {"Content-Type": "application/json"})
            if status == 200:
                job.backend_job = json.loads(body)
            else:
                job.error_result = _error_from_body(body, status)

    def _poll(self, job: StubJob) -> None:
        job.polls += 1
        if job.state == "DONE":
            return
        if job.cancel_requested or job.polls_left <= 0:
            self._finish(job)
            return
        job.polls_left -= 1
        job.state = "RUNNING"
        job.started_ms = job.started_ms or int(time.time() * 1000)

    # -- forwarding ----------------------------------------------------------------
    def _forward(self, method: str, path_qs: str, headers: dict[str, str], body: bytes | None, extra: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
        if not self.backend:
            return 404, [("Content-Type", "application/json")], json.dumps(_error_payload(404, "notFound", f"Not found: {path_qs} (slowjobs stub has no backend)")).encode()
        u = urlsplit(self.backend)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        try:
            send = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            send.update(extra or {})
            conn.request(method, path_qs, body=body, headers=send)
            resp = conn.getresponse()
            data = resp.read()
            out = []
            for k, v in resp.getheaders():
                if k.lower() in _HOP_BY_HOP:
                    continue
                if k.lower() == "location" and v.startswith(self.backend):
                    v = self.endpoint + v[len(self.backend):]
                out.append((k, v))
            return resp.status, out, data
        finally:
            conn.close()


def _error_payload(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "errors": [{"reason": reason, "message": message, "domain": "global"}]}}


def _error_from_body(body: bytes, status: int) -> dict[str, Any]:
    try:
        err = json.loads(body)["error"]
        first = (err.get("errors") or [{}])[0]
        return {"reason": first.get("reason", "backendError"), "message": err.get("message", "")}
    except (ValueError, KeyError, TypeError):
        return {"reason": "backendError", "message": f"backend answered HTTP {status}"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_stub: SlowJobsServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _reply(self, status: int, payload: Any = None, headers: list[tuple[str, str]] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        sent_ct = False
        for k, v in headers or []:
            sent_ct = sent_ct or k.lower() == "content-type"
            self.send_header(k, v)
        if not sent_ct and raw is None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self) -> None:
        stub = self.server_stub
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path, params = split.path, parse_qs(split.query)
        try:
            body: Any = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "") else (raw or None)
        except ValueError:
            body = raw
        call = Call(kind="forward", method=self.command, path=path, params=params, body=body)
        with stub._lock:
            stub.calls.append(call)
        status, payload, headers, out_raw = self._handle(call, raw)
        call.status = status
        self._reply(status, payload, headers, out_raw)

    def _handle(self, call: Call, raw: bytes) -> tuple[int, Any, list[tuple[str, str]] | None, bytes | None]:
        stub = self.server_stub
        method, path = call.method, call.path
        if method == "POST" and (m := _JOBS.match(path)):
            call.kind = "jobs.insert"
            return self._insert(call, m.group(1))
        m = _CANCEL.match(path) if method == "POST" else None
        m2 = _JOB.match(path) if method == "GET" else None
        m3 = _RESULTS.match(path) if method == "GET" else None
        match = m or m2 or m3
        if match:
            call.kind = "jobs.cancel" if m else "jobs.get" if m2 else "jobs.getQueryResults"
            call.job_id = match.group(2)
            with stub._lock:
                job = stub.jobs.get((match.group(1), match.group(2)))
                if job is not None:
                    return self._own_job(call, job)
        status, headers, data = stub._forward(method, self.path, dict(self.headers.items()), raw or None)
        return status, None, headers, data

    def _insert(self, call: Call, project: str) -> tuple[int, Any, list[tuple[str, str]] | None, bytes | None]:
        stub = self.server_stub
        resource = call.body if isinstance(call.body, dict) else {}
        ref = resource.setdefault("jobReference", {})
        job_id = ref.get("jobId") or f"slowjobs_{uuid.uuid4().hex[:12]}"
        location = ref.get("location") or stub.location
        ref.update(projectId=project, jobId=job_id, location=location)
        call.job_id = job_id
        with stub._lock:
            if stub._insert_failures:
                status, reason = stub._insert_failures.pop(0)
                return status, _error_payload(status, reason, f"stub: injected {reason}"), None, None
            if (project, job_id) in stub.jobs:
                msg = f"Already Exists: Job {project}:{location}.{job_id}"
                return 409, _error_payload(409, "duplicate", msg), None, None
            job = StubJob(project, job_id, location, resource, polls_left=stub.running_polls, error_result=stub._next_error)
            stub.jobs[(project, job_id)] = job
            return 200, stub._job_resource(job), None, None

    def _own_job(self, call: Call, job: StubJob) -> tuple[int, Any, list[tuple[str, str]] | None, bytes | None]:
        stub = self.server_stub
        if call.kind == "jobs.get":
            stub._poll(job)
            return 200, stub._job_resource(job), None, None
        if call.kind == "jobs.cancel":
            if job.state != "DONE":
                job.cancel_requested = True
            return 200, {"kind": "bigquery#jobCancelResponse", "job": stub._job_resource(job)}, None, None
        # jobs.getQueryResults
        if job.state != "DONE":
            timeout_ms = int((call.params.get("timeoutMs") or ["10000"])[0])
            time.sleep(min(stub.results_wait_s, timeout_ms / 1000))
            ref = {"projectId": job.project, "jobId": job.job_id, "location": job.location}
            return 200, {"kind": "bigquery#getQueryResultsResponse", "jobReference": ref, "jobComplete": False}, None, None
        if job.error_result is not None:
            err = job.error_result
            code = 400 if err.get("reason") in ("invalidQuery", "invalid", "stopped") else 500
            return code, _error_payload(code, err.get("reason", "backendError"), err.get("message", "")), None, None
        if job.backend_job is not None:
            status, headers, data = stub._forward("GET", self.path, dict(self.headers.items()), None)
            return status, None, headers, data
        ref = {"projectId": job.project, "jobId": job.job_id, "location": job.location}
        return 200, {"kind": "bigquery#getQueryResultsResponse", "jobReference": ref, "jobComplete": True,
                     "schema": {"fields": []}, "totalRows": "0", "rows": []}, None, None
