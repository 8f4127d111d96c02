"""Executions over the API: a page of the list, one execution's summary, its events and logs,
and the pools' holders and waiters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ExecutionRow(BaseModel):
    """One execution as the list shows it."""

    id: str
    workflow: str
    version: str
    project: str
    domain: str
    phase: str
    created: float
    updated: float
    launch_plan: str | None = None
    launched_by: str | None = None


class ExecutionPage(BaseModel):
    """A page of executions, newest first; ``next_cursor`` asks for the next (None: the last)."""

    items: list[ExecutionRow]
    next_cursor: str | None = None


class AttemptSummary(BaseModel):
    """One attempt of a node: its phase, what went wrong, what it waits for, where its log is."""

    number: int
    phase: str
    message: str = ""
    error_kind: str | None = None
    waiting: dict[str, Any] | None = None
    log_links: dict[str, str] = Field(default_factory=dict)
    cleanup_error: str | None = None


class NodeSummary(BaseModel):
    """One node: its phase, attempts, and for a map its items' counts and first failures."""

    node: str
    phase: str
    cached: bool = False
    error: str | None = None
    items: int | None = None
    item_counts: dict[str, int] = Field(default_factory=dict)
    item_errors: dict[int, str] = Field(default_factory=dict, description="The first ten failed items")
    attempts: list[AttemptSummary] = Field(default_factory=list)


class ExecutionSummary(BaseModel):
    """An execution: its row, inputs, outputs once it succeeded, its error, and its nodes."""

    execution: ExecutionRow
    phase: str
    tags: list[str] = Field(default_factory=list)
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error: str | None = None
    failed_node: str | None = None
    nodes: list[NodeSummary] = Field(default_factory=list)


class EventOut(BaseModel):
    """One recorded event; ``seq`` orders them (resume a stream after it)."""

    seq: int
    run: int
    ts: float
    kind: str
    entity: str
    phase: str
    data: dict[str, Any] = Field(default_factory=dict)


class LogPart(BaseModel):
    """Some of an attempt's log: ``stdout``, ``stderr``, ``pod`` (both, mixed), or a stream its
    task type named (``rank1.stderr``); of kind ``link``, where something kept that is not log
    text is (``source``; ``text`` says ``notebook: ADDRESS``)."""

    stream: str
    text: str
    source: str
    kind: str = "text"


class AttemptLogs(BaseModel):
    """An attempt's log as it is now, and what a reader should know besides."""

    attempt: str
    parts: list[LogPart]
    notes: list[str] = Field(default_factory=list)


class PoolUsage(BaseModel):
    """A rate-limited pool: capacity, and tokens held and requests waiting per tenant."""

    name: str
    capacity: int | None = None
    rate: float | None = None
    holders: dict[str, int] = Field(default_factory=dict)
    waiters: dict[str, int] = Field(default_factory=dict)


class Pools(BaseModel):
    """Every pool, and where their state was read (a Redis URL, or the store's running executions)."""

    pools: list[PoolUsage]
    source: str
