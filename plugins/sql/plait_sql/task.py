"""The base of SQL task types: template, outputs and local mode; a subclass adds its service.

A subclass sets ``name``, ``dialect`` (sqlglot's name for its SQL) and ``config_model`` (a
:class:`QueryConfig`), and implements the ``*_remote`` methods against its service. Local
mode (``connection="local"`` or ``PLAIT_OFFLINE=1``) is handled here.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from typing import Any, ClassVar

from plait import CompileError, Phase, PlaitError, Status, TaskConfig, TaskType
from plait.sdk import AttemptContext, ErrorKind, Handle, TaskTemplate
from pydantic import BaseModel, field_validator

from plait_sql.local import LocalQueryError, LocalWarehouse, offline
from plait_sql.results import output_kinds, outputs_of
from plait_sql.table import Table
from plait_sql.template import Parameter, check_template, render

LOCAL = "local"


class QueryConfig(TaskConfig):
    """What every query task has: the SQL template, where it runs, where a Table output goes."""

    query: str
    connection: str | None = None
    """``"local"`` runs on the embedded DuckDB warehouse; otherwise the service's own meaning."""
    destination: str | None = None
    """The table a ``Table`` output is written to (default: one named after the task and run)."""

    @field_validator("destination")
    @classmethod
    def _table_name(cls, name: str | None) -> str | None:
        if name is not None:
            Table(name).parts()
        return name


def result_table_name(ctx: AttemptContext, task_name: str) -> str:
    """A table name for a ``Table`` output, the same for every attempt of one node in one run."""
    digest = hashlib.sha256(f"{ctx.execution_id}/{ctx.node_id}/{ctx.item_index}".encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', task_name)[:40]}_{digest}"


class QueryTask(TaskType):
    """A task type that runs one query template on a warehouse service, or locally."""

    dialect: ClassVar[str]
    config_model: ClassVar[type[BaseModel] | None] = QueryConfig

    def __init__(self) -> None:
        self._warehouse: LocalWarehouse | None = None
        self._warehouse_lock = threading.Lock()

    # -- what a subclass implements ----------------------------------------------------------

    def submit_remote(self, ctx: AttemptContext, task: TaskTemplate, config: Any, kinds: dict[str, str]) -> Handle:
        raise NotImplementedError

    def poll_remote(self, ctx: AttemptContext, handle: Handle) -> Status:
        raise NotImplementedError

    def abort_remote(self, ctx: AttemptContext, handle: Handle) -> None:
        raise NotImplementedError

    def cleanup_remote(self, ctx: AttemptContext, handle: Handle) -> None:
        raise NotImplementedError

    def pools_remote(self, task: TaskTemplate, config: Any) -> dict[str, int]:
        return {}

    def check_remote(self, task: TaskTemplate, config: Any) -> None:
        """Reject a task the service cannot run (the template and outputs are checked already)."""

    # -- shared --------------------------------------------------------------------------------

    def config(self, task: TaskTemplate) -> Any:
        assert self.config_model is not None
        return self.config_model.model_validate(task.config)

    def is_local(self, config: Any) -> bool:
        return bool(config.connection == LOCAL or offline())

    def check(self, task: TaskTemplate) -> None:
        config = self.config(task)
        check_template(task, config.query)
        output_kinds(task)
        if self.is_local(config):
            dummy = render(task, config.query, {n: None for n in task.interface.inputs},
                           placeholder=lambda p, i: f":{p.name}", frame_table=lambda n: f"plait_input_{n}",
                           table_name=lambda t: "t")
            try:
                LocalWarehouse.translate(dummy.sql, self.dialect)  # no database needed to compile
            except LocalQueryError as e:
                raise CompileError(f"{self.name} task {task.name!r}: {e}") from None
        else:
            self.check_remote(task, config)

    def pools(self, task: TaskTemplate, config: BaseModel | None) -> dict[str, int]:
        if config is not None and self.is_local(config):
            return {f"{self.name}:{LOCAL}": 1}
        return self.pools_remote(task, config)

    def warehouse(self) -> LocalWarehouse:
        with self._warehouse_lock:
            if self._warehouse is None:
                self._warehouse = LocalWarehouse()
            return self._warehouse

    def submit(self, ctx: AttemptContext, task: TaskTemplate) -> Handle:
        config = self.config(task)
        kinds = output_kinds(task)
        if not self.is_local(config):
            return self.submit_remote(ctx, task, config, kinds)
        rendered = render(task, config.query, ctx.inputs, placeholder=lambda p, i: f":{p.name}",
                          frame_table=lambda n: f"plait_input_{n}",
                          table_name=lambda t: ".".join(t.parts()[-2:]))
        destination = None
        if "table" in kinds.values():
            destination = ".".join((config.destination or f"plait.{result_table_name(ctx, task.name)}")
                                   .split(".")[-2:])
        frames = {rendered.frames[n]: _frame_loader(ctx, ctx.inputs[n]["uri"]) for n in rendered.frames}
        try:
            self.warehouse().submit(ctx.attempt_id, rendered.sql, self.dialect, rendered.parameters, frames,
                                    destination, ctx.notify)
        except LocalQueryError as e:  # SQL the translator cannot read: running it again will not help
            raise PlaitError(f"{self.name} task {task.name!r} in local mode: {e}") from None
        return {"mode": LOCAL, "job": ctx.attempt_id, "outputs": kinds, "destination": destination}

    def poll(self, ctx: AttemptContext, handle: Handle) -> Status:
        if handle.get("mode") != LOCAL:
            return self.poll_remote(ctx, handle)
        state, value = self.warehouse().poll(handle["job"])
        if state == "running":
            return Status(Phase.RUNNING)
        if state == "cancelled":
            return Status(Phase.ABORTED, "the query was cancelled")
        if state == "lost":
            return Status.failed("the local query was lost when the engine stopped; the next attempt runs it "
                                 "again", error_kind=ErrorKind.SYSTEM)
        if state == "failed":
            return Status.failed(f"the local warehouse ({self.dialect} SQL on DuckDB) failed: {value}",
                                 retryable=False)
        return self.finish(ctx, handle, value, {"name": handle["destination"], "connection": LOCAL})

    def finish(self, ctx: AttemptContext, handle: Handle, result: Any, table: dict[str, str] | None) -> Status:
        """The success status for a result (a ``pyarrow.Table``), or why it does not fit the outputs."""
        try:
            return Status.succeeded(outputs_of(handle["outputs"], result, ctx.blobs, table))
        except ValueError as e:
            return Status.failed(str(e), retryable=False)

    def abort(self, ctx: AttemptContext, handle: Handle) -> None:
        if handle.get("mode") == LOCAL:
            self.warehouse().cancel(handle["job"])
        else:
            self.abort_remote(ctx, handle)

    def cleanup(self, ctx: AttemptContext, handle: Handle) -> None:
        if handle.get("mode") == LOCAL:
            self.warehouse().forget(handle["job"])
        else:
            self.cleanup_remote(ctx, handle)

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None


def _frame_loader(ctx: AttemptContext, uri: str) -> Any:
    def load() -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(ctx.blobs.read_bytes(uri)))

    return load


__all__ = ["LOCAL", "Parameter", "QueryConfig", "QueryTask", "result_table_name"]
