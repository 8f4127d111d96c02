"""Live progress of an execution: nodes done, running and failed, and map progress bars.

On a terminal the view is redrawn from the execution's projected state a few times a second,
so the engine pays one function call per event. Elsewhere (CI logs, pipes) it prints one
line per node transition and a map's progress every 10%.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from plait.model.events import Event
from plait.model.spec import WorkflowSpec
from plait.storage.events import ExecutionState

_DONE = ("succeeded", "failed", "timed_out", "aborted", "skipped")


class Progress:
    def __init__(self, spec: WorkflowSpec, console: Console) -> None:
        self.spec = spec
        self.console = console
        self.state: ExecutionState | None = None
        self.started = time.monotonic()
        self.live = console.is_terminal
        self._live: Live | None = None
        self._reported: dict[str, int] = {}
        self._endings: dict[str, int] = {}  # item events that ended an attempt, by map node
        self._next: dict[str, int] = {}  # the count of endings at which a map's next line may be due

    def __enter__(self) -> Progress:
        if self.live:
            self._live = Live(get_renderable=self.render, console=self.console, refresh_per_second=4,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def on_event(self, event: Event, state: ExecutionState) -> None:
        self.state = state
        if self.live:
            return
        if event.kind == "node" and event.phase in ("running", *_DONE):
            self.console.print(f"{self._clock()} {event.entity}: {event.phase}", highlight=False)
        elif event.kind == "item" and event.phase in _DONE:
            name = event.data["node"]
            endings = self._endings[name] = self._endings.get(name, 0) + 1
            if endings < self._next.get(name, 0):  # at least that many endings until the next line is due
                return
            node = state.nodes.get(name)
            if node is not None and node.items:
                done = sum(v for k, v in node.item_counts.items() if k in _DONE)
                step = max(1, node.items // 10)
                if done // step > self._reported.get(name, 0) or done == node.items:
                    self._reported[name] = done // step
                    self.console.print(f"{self._clock()} {name}: {done}/{node.items} items", highlight=False)
                self._next[name] = endings + min((done // step + 1) * step, node.items) - done

    def _clock(self) -> str:
        return f"[{time.monotonic() - self.started:6.1f}s]"

    def render(self) -> Any:
        state = self.state
        if state is None:
            return Text(f"starting {self.spec.name}…")
        counts: dict[str, int] = {}
        for node in state.nodes.values():
            counts[node.phase] = counts.get(node.phase, 0) + 1
        total = len(self.spec.nodes)
        summary = Text(
            f"{self.spec.name}  {time.monotonic() - self.started:5.1f}s   nodes: "
            f"{counts.get('succeeded', 0)} done, {counts.get('running', 0)} running, "
            f"{counts.get('failed', 0)} failed, {max(0, total - len(state.nodes))} waiting"
        )
        table = Table.grid(padding=(0, 2))
        for node in state.nodes.values():
            if node.items is not None:
                done = node.item_counts.get("succeeded", 0)
                failed = sum(node.item_counts.get(k, 0) for k in ("failed", "timed_out"))
                bar = ProgressBar(total=max(node.items, 1), completed=done + failed, width=30)
                label = f"{done + failed}/{node.items}" + (f" ({failed} failed)" if failed else "")
                table.add_row(node.node, bar, label, node.phase)
            elif node.phase == "running" or node.phase in ("failed", "timed_out"):
                table.add_row(node.node, "", "", node.phase)
        return Group(summary, table)

    def finish(self, result: Any) -> None:
        took = time.monotonic() - self.started
        self.console.print(f"execution {result.execution_id} {result.phase.value} in {took:.1f}s", highlight=False)
