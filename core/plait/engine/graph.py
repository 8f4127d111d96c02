"""Running a graph: nodes become ready when their last input arrives; maps keep compact state.

:class:`_Graph` schedules one workflow's (or a dynamic node's sub-workflow's) nodes from a
ready queue; :class:`_MapNode` runs a map node's items with bounded concurrency. Both run
attempts through the execution they belong to (:class:`plait.engine.execution._Execution`).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Any

from plait.model.errors import PlaitError
from plait.model.lineage import has_datasets
from plait.model.spec import Binding, Node, TaskTemplate, WorkflowSpec
from plait.model.status import Phase, Status
from plait.plugins.tasktype import TaskType
from plait.types.engine import load_offloaded, offload

if TYPE_CHECKING:
    from plait.engine.execution import _Execution


class NodeFailed(Exception):
    def __init__(self, node: str, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class _Graph:
    """One workflow's nodes inside an execution (the top level, a sub-workflow, a dynamic one)."""

    def __init__(self, execution: _Execution, spec: WorkflowSpec, prefix: str, inputs: dict[str, Any]) -> None:
        self.x = execution
        self.spec = spec
        self.prefix = prefix
        self.inputs = inputs
        self.results: dict[str, dict[str, Any]] = {}

    def resolve(self, binding: Binding) -> Any:
        if binding.kind == "value":
            return binding.value
        if binding.kind == "list":
            return [self.resolve(b) for b in binding.items]
        assert binding.output is not None
        source = self.inputs if not binding.node else self.results[binding.node]
        return source[binding.output]

    async def run(self) -> dict[str, Any]:
        nodes = {n.id: n for n in self.spec.nodes}
        waiting = {n.id: len(n.upstream()) for n in self.spec.nodes}
        consumers: dict[str, list[str]] = {n: [] for n in nodes}
        for n in self.spec.nodes:
            for up in n.upstream():
                consumers[up].append(n.id)
        ready = [n for n, count in waiting.items() if count == 0]
        running: dict[asyncio.Task[dict[str, Any]], str] = {}
        failure: NodeFailed | None = None
        try:
            while ready or running:
                for node_id in ready:
                    task = asyncio.create_task(self.run_node(nodes[node_id]))
                    running[task] = node_id
                ready = []
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    node_id = running.pop(task)
                    exc = task.exception()
                    if exc is None:
                        self.results[node_id] = task.result()
                        for consumer in consumers[node_id]:
                            waiting[consumer] -= 1
                            if waiting[consumer] == 0:
                                ready.append(consumer)
                        continue
                    if not isinstance(exc, NodeFailed):
                        exc = NodeFailed(self.prefix + node_id, f"engine error: {type(exc).__name__}: {exc}")
                    failure = failure or exc
                    if self.x.options.fail_fast:
                        raise failure
                    self._skip_downstream(node_id, consumers)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        if failure is not None:
            raise failure
        return {name: self.resolve(b) for name, b in self.spec.output_bindings.items()}

    def _skip_downstream(self, node_id: str, consumers: dict[str, list[str]]) -> None:
        stack = list(consumers[node_id])
        seen: set[str] = set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            self.x.emit("node", self.prefix + n, Phase.SKIPPED, {"error": f"upstream node {self.prefix + node_id} failed"})
            stack.extend(consumers[n])

    async def run_node(self, node: Node) -> dict[str, Any]:
        path = self.prefix + node.id
        if path in self.x.prior.node_outputs:  # done before a resume, or in the execution recovered
            outputs = self.x.prior.node_outputs[path]
            if self.x.prior.recovered_from and path not in self.x.state.nodes:
                self.x.emit("node", path, Phase.SUCCEEDED, {"outputs": outputs,
                                                            "recovered_from": self.x.prior.recovered_from})
            return outputs
        inputs = {name: self.resolve(b) for name, b in node.inputs.items()}
        try:
            if node.kind == "workflow":
                assert node.workflow is not None
                sub = self.spec.subworkflows[node.workflow]
                self.x.emit("node", path, Phase.RUNNING)
                outputs = await _Graph(self.x, sub, path + ".", {**sub.defaults, **inputs}).run()
            elif node.kind == "map":
                outputs = await _MapNode(self, node, path, inputs).run()
            else:
                assert node.task is not None
                outputs = await self.run_task_node(path, self.spec.tasks[node.task], inputs)
        except NodeFailed as exc:
            self.x.emit("node", path, Phase.FAILED, {"error": exc.message})
            raise
        except asyncio.CancelledError:
            self.x.emit("node", path, Phase.ABORTED, {"error": "aborted"})
            raise
        except Exception as exc:  # a blob store, cache or plugin error outside an attempt
            message = f"{type(exc).__name__}: {exc}"
            self.x.emit("node", path, Phase.FAILED, {"error": message})
            raise NodeFailed(path, message) from exc
        self.x.emit("node", path, Phase.SUCCEEDED, {"outputs": outputs})
        return outputs

    async def run_task_node(self, path: str, template: TaskTemplate, inputs: dict[str, Any]) -> dict[str, Any]:
        key = template.cache_key(inputs) if template.cache else None
        if key is not None and not self.x.options.overwrite_cache:
            cached = self.x.store.cached(key)
            if cached is not None:
                self.x.emit("node", path, Phase.RUNNING, {"cached": True})
                return cached
        self.x.emit("node", path, Phase.RUNNING)
        outputs = await self.x.run_task(path, template, inputs)
        if template.dynamic:
            outputs = await self.run_dynamic(path, template, outputs["$spec"])
        if key is not None:
            self.x.store.put_cache(key, template.name, outputs, self.x.id)
        return outputs

    async def run_dynamic(self, path: str, template: TaskTemplate, body: dict[str, Any]) -> dict[str, Any]:
        from plait.authoring.compiler import check_spec

        try:
            sub = check_spec(WorkflowSpec.model_validate(body))
        except PlaitError as exc:
            raise NodeFailed(path, f"the workflow built by dynamic task {template.name} is invalid: {exc}") from None
        for name, expected in template.interface.outputs.items():
            actual = sub.outputs.get(name)
            from plait.types.engine import engine

            if actual is None or not engine().castable(actual, expected):
                got = actual.describe() if actual else "nothing"
                raise NodeFailed(path, f"dynamic task {template.name} must return {expected.describe()} "
                                       f"for output {name!r}, its workflow returns {got}")
        self.x.emit("graph", path + "#graph", Phase.SUCCEEDED, {"version": sub.version, "nodes": len(sub.nodes)})
        return await _Graph(self.x, sub, path + ".", {}).run()


CHUNK_S = 0.02
"""A chunk of a map's quick items is sized to take about this long (see :meth:`_MapNode.chunk_size`)."""
MAX_CHUNK = 256


class _MapNode:
    """A map node: items run with bounded concurrency; state is counts plus failures.

    Quick items run in chunks where the task type can (:meth:`TaskType.submit_chunk`): a
    chunk is handed over at once, and sized from the measured item time, so items of
    microseconds go many to a message and items of seconds one at a time. Each item is still
    its own attempt, recorded start and end; one that fails is retried on its own.
    """

    def __init__(self, graph: _Graph, node: Node, path: str, inputs: dict[str, Any]) -> None:
        assert node.map is not None and node.task is not None
        self.graph = graph
        self.x = graph.x
        self.path = path
        self.template = graph.spec.tasks[node.task]
        self.over = node.map.over
        self.items: list[Any] = load_offloaded(inputs[self.over], self.x.io)
        self.shared = {k: v for k, v in inputs.items() if k != self.over}
        self.min_ratio = node.map.min_success_ratio
        self.x.map_sizes[path] = len(self.items)
        task_type = self.x.engine.registry.task_type(self.template.type, needed_by=self.template.name)
        capacity = task_type.capacity(self.x.options.inline)
        if task_type.uses_python_slots and not self.x.options.inline:  # as many as the platform runs at once
            capacity = self.x.platform.python_slots(len(self.items))
        self.window = node.map.concurrency or (2 * capacity if capacity else 64)
        self.task_type = task_type
        self.chunked = node.map.concurrency is None and self._chunkable(task_type)
        self.item_seconds: float | None = None
        """How long an item takes, measured over the chunks so far (None before the first)."""

    def _chunkable(self, task_type: TaskType) -> bool:
        """Whether items may run in chunks: nothing an attempt alone does would be left out."""
        t = self.template
        return (not task_type.blocking and type(task_type).submit_chunk is not TaskType.submit_chunk
                and type(task_type).pools is TaskType.pools and not t.timeout and not t.cache
                and not t.secrets and not t.dynamic and self.x.options.max_parallelism is None
                and not has_datasets(t))

    def chunk_size(self, left: int) -> int:
        """Items for the next chunk: about ``CHUNK_S`` of work, one while nothing is measured,
        and no more than an even share of what is left among the window's chunks."""
        if self.item_seconds is None:
            return 1
        size = int(CHUNK_S / max(self.item_seconds, 1e-7))
        return max(1, min(size, MAX_CHUNK, -(-left // self.window)))

    async def run(self) -> dict[str, Any]:
        n = len(self.items)
        self.x.emit("node", self.path, Phase.RUNNING, {"items": n})
        names = list(self.template.interface.outputs)
        results: dict[str, list[Any]] = {name: [None] * n for name in names}
        allowed_failures = n - math.ceil(self.min_ratio * n - 1e-9)
        failures: dict[int, str] = {}
        next_index = 0
        stop = False

        async def item(i: int, first: Status | None = None) -> None:
            nonlocal stop
            try:
                if first is None:
                    outputs = await self.run_item(i)
                else:  # attempt 1 failed in a chunk: the next ones run on their own
                    outputs = await self.x.run_task(self.path, self.template, self.inputs(i), i, first=first)
            except NodeFailed as exc:
                failures[i] = exc.message
                if len(failures) > allowed_failures:
                    stop = True
                return
            for name in names:
                results[name][i] = outputs[name]

        async def worker() -> None:
            nonlocal next_index
            while not stop and next_index < n:
                i = next_index
                next_index += 1
                await item(i)
                if i % 256 == 255:
                    await asyncio.sleep(0)  # let progress, flushing and Ctrl-C through

        async def chunks() -> None:
            nonlocal next_index
            while not stop and next_index < n:
                size = self.chunk_size(n - next_index)
                chunk: list[tuple[int, dict[str, Any]]] = []
                while len(chunk) < size and next_index < n:
                    i = next_index
                    next_index += 1
                    if (self.path, i) in self.x.prior.attempts or (self.path, i) in self.x.prior.item_outputs:
                        await item(i)  # run (or recovered) before: resumed on its own, as it was
                    else:
                        chunk.append((i, self.inputs(i)))
                if not chunk:
                    continue
                started = time.monotonic()
                statuses = await self.x.run_chunk(self.path, self.template, self.task_type, chunk)
                if statuses is None:  # the task type runs its items one by one after all
                    self.chunked = False
                    for i, _ in chunk:
                        await item(i)
                    return await worker()
                took = (time.monotonic() - started) / len(chunk)
                self.item_seconds = took if self.item_seconds is None else 0.7 * self.item_seconds + 0.3 * took
                retries = []
                for (i, _), status in zip(chunk, statuses):
                    if status.phase == Phase.SUCCEEDED:
                        for name in names:
                            results[name][i] = (status.outputs or {})[name]
                    else:
                        retries.append(item(i, status))
                if retries:
                    await asyncio.gather(*retries)
                await asyncio.sleep(0)  # let progress, flushing and Ctrl-C through

        run = chunks if self.chunked else worker
        workers = [asyncio.create_task(run()) for _ in range(min(self.window, n) or 1)]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        if len(failures) > allowed_failures:
            shown = "; ".join(f"item {i}: {m.splitlines()[0]}" for i, m in sorted(failures.items())[:5])
            more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
            raise NodeFailed(self.path, f"{len(failures)} of {n} items failed, more than min_success_ratio="
                                        f"{self.min_ratio:g} allows: {shown}{more}")
        return {name: offload(values, self.x.io) for name, values in results.items()}

    def inputs(self, index: int) -> dict[str, Any]:
        return {**self.shared, self.over: self.items[index]}

    async def run_item(self, index: int) -> dict[str, Any]:
        done = self.x.prior.item_outputs.get((self.path, index))
        if done is not None:
            if self.x.prior.recovered_from:
                self.x.emit("item", f"{self.path}[{index}]/recovered", Phase.SUCCEEDED,
                            {"node": self.path, "index": index, "attempt": 0, "outputs": done,
                             "recovered_from": self.x.prior.recovered_from})
            return done
        inputs = self.inputs(index)
        template = self.template
        key = template.cache_key(inputs) if template.cache else None
        if key is not None and not self.x.options.overwrite_cache:
            cached = self.x.store.cached(key)
            if cached is not None:
                self.x.emit("item", f"{self.path}[{index}]/cached", Phase.SUCCEEDED,
                            {"node": self.path, "index": index, "attempt": 0, "cached": True, "outputs": cached})
                return cached
        try:
            outputs = await self.x.run_task(self.path, template, inputs, index)
        except NodeFailed as exc:
            raise NodeFailed(self.path, exc.message) from None
        if key is not None:
            self.x.store.put_cache(key, template.name, outputs, self.x.id)
        return outputs

