"""Why each known survivor survives: keyed as the report shows them, without line numbers.

A Python mutant's key is ``Function.name: `before` -> `after```; a Lua mutant's is its name
in lua.py. The report prints the note under the survivor; a survivor without a note is new
and needs a test or a note.
"""

from __future__ import annotations

EQUIVALENT = "Equivalent: "
TOKENS = "To be killed by test_tokens.py: "
REDIS = "To be killed by test_tokens_redis.py: "
FULL = "with used == capacity the free capacity is 0 and no request (count >= 1) fits, so the loop finds no candidate and stops, as the original loop would not have started."

RESUME_OPTIONS = ("Killed from now on by test_resume_options.py (added after the first pass: "
                  "test_resume.py always passes options to resume, and never resumes twice).")

CACHE = ("Killed by test_engine.py::test_cached_map_items_are_recorded_as_cached_successes (checked by "
         "hand): run_item also reads the cache, and the first pass ran it against test_resume.py only; "
         "the target runs test_engine.py's cache tests from now on.")

COMPILE = ("Killed from now on by test_compile_checks.py (checked by hand; added after the first pass: "
           "a traced workflow is checked while it is traced, so check_spec's own paths for loaded "
           "specs, and castable's rules, had no test).")

NOTES: dict[str, str] = {
    # -- Redis (Lua) ------------------------------------------------------------------------
    "grant loop `used() < capacity` -> `<=`": EQUIVALENT + FULL,
    "free-capacity check replaced by true":
        REDIS + "a request larger than the free capacity must wait (pool of 3, one tenant holds 2, "
        "another asks for 2: not granted until 2 are free).",
    "rate bucket not bounded by the capacity":
        REDIS + "after a long idle spell a rate-limited pool grants at most `capacity` at once "
        "(capacity 2, rate 1/s, idle 3 s, then acquire-and-release in a row: the third waits).",
    "rate bucket `b >= 1` -> `b > 1`":
        REDIS + "a rate-limited pool starts full: a pool of capacity 1 with a rate grants its "
        "first request at once.",
    "asking again enqueues the request again":
        REDIS + "asking again (as `acquire` does while it polls) keeps a waiting request's place: "
        "r1 then r2 wait in one tenant, r1 asks again, one token frees: r1 gets it.",
    "acquiring a held lease again does not extend it":
        REDIS + "`try_acquire` on a lease already held extends it: with a 1 s lease and no "
        "renewer, re-acquiring every 0.3 s keeps it held past 2 s.",
    "renew extends leases only, not waiting requests":
        REDIS + "`renew()` keeps a waiting request alive: a request that waits with a 1 s lease "
        "and is only renewed (not asked again) is still waiting after 2 s.",
    "lease expiry `<` -> `<=`":
        EQUIVALENT + "only a lease whose expiry equals the current millisecond differs (gone at t "
        "instead of t + 1 ms); expiry is measured in seconds and the design names no boundary.",
    "request expiry `<` -> `<=`":
        EQUIVALENT + "as for leases: a one-millisecond boundary the design does not define.",
    # -- Allocator --------------------------------------------------------------------------
    "Allocator.check: `1` -> `0`":
        TOKENS + "a request for 0 tokens can never be granted: `request(..., count=0)` raises "
        "TokenRequestError (today `count < 0` would accept it).",
    "Allocator.release: `tenant = self._where.pop(lease_id, None)` -> `pass`":
        TOKENS + "releasing a *waiting* request withdraws it: it is never granted afterwards, its "
        "tenant's next request moves up, `snapshot()['waiters']` drops it, and `release` returns []. "
        "No allocator test releases a request that still waits (the same gap lets the next seven live).",
    "Allocator.release: `tenant is not None` -> `tenant is None`": TOKENS + "withdrawing a waiting request (above).",
    "Allocator.release: `queue = self.waiting[tenant]` -> `pass`": TOKENS + "withdrawing a waiting request (above).",
    "Allocator.release: `queue[:] = [r for r in queue if r[2] != lease_id]` -> `pass`":
        TOKENS + "withdrawing a waiting request (above): a withdrawn request must never be granted.",
    "Allocator.release: `r[2] != lease_id` -> `r[2] == lease_id`":
        TOKENS + "withdrawing one waiting request must leave the tenant's other waiting requests queued.",
    "Allocator.release: `2` -> `3`": TOKENS + "withdrawing a waiting request (above).",
    "Allocator.release: `2` -> `0`": TOKENS + "withdrawing a waiting request (above).",
    "Allocator.release: `return []` -> `return None`":
        TOKENS + "withdrawing a waiting request returns [] (nothing was granted by it).",
    "Allocator.grant: `self.used < self.pool.capacity` -> `self.used <= self.pool.capacity`": EQUIVALENT + FULL,
    "Allocator.grant: `key < best` -> `key <= best`":
        EQUIVALENT + "two candidates' keys are never equal: each holds its request's arrival number "
        "`seq`, unique in the pool.",
    "Allocator._take_from_bucket: `return False` -> `return None`":
        EQUIVALENT + "the only caller tests `not self._take_from_bucket(now)`; None is as false as False.",
    "Allocator.next_refill: `self._bucket >= 1.0` -> `self._bucket > 1.0`":
        EQUIVALENT + "with exactly one token in the bucket it returns `now` instead of None: the "
        "manager schedules one refill for now, which grants what the bucket allows anyway (requests "
        "then wait on capacity, not on the rate).",
    "Allocator.next_refill: `1.0` -> `2.0`":
        EQUIVALENT + "with 1 <= bucket < 2 it returns a time at or before `now` instead of None: one "
        "extra, empty refill, as above.",
    "Allocator.next_refill: `1.0 - self._bucket` -> `(1.0 + self._bucket)`":
        TOKENS + "a rate-limited pool says when it can next grant: capacity 1, rate 1/s, a grant at "
        "t=0, a request at t=0.5 waits and `next_refill(0.5)` is 1.0 (the mutant says 2.0, so the "
        "in-process manager wakes the request a second late).",
    # -- compiler and castable ----------------------------------------------------------------
    "_check_node: `node.kind == \"workflow\" and node.workflow` -> `(node.kind == 'workflow' or node.workflow)`":
        EQUIVALENT + "only a task or map node that also names a sub-workflow would differ, and none "
        "does: the tracer never sets `workflow` on one (a hand-written JSON spec could; then its "
        "`spec.subworkflows[...]` look-up would fail loudly, not pass a bad binding).",
    "_check_node: `node.kind == \"workflow\" and node.workflow` -> `(node.kind == 'workflow')`":
        EQUIVALENT + "a workflow node always names its sub-workflow: one that does not is refused "
        "three lines above (`unknown sub-workflow`).",
    "_check_node: `node.kind == \"workflow\" and node.workflow` -> `(node.workflow)`":
        EQUIVALENT + "as for `or` above: only a task or map node naming a sub-workflow would differ.",
    "TypeEngine.castable: `return False` -> `return None`":
        EQUIVALENT + "every caller tests `not engine().castable(...)`; None is as false as False.",
    # -- engine ------------------------------------------------------------------------------
    "_Execution.run_task: `number, handle = reattach` -> `pass`":
        "Killed by test_resume.py (checked by hand): re-attaching is resume logic inside run_task; "
        "the first pass ran run_task's mutants against test_engine.py only; test_resume.py is in "
        "this target's tests from now on.",
    "_Execution.run_task: `reattach = None` -> `pass`":
        "Killed by test_resume.py (checked by hand), as above.",
    "_Execution.run_task: `status.outputs or {}` -> `(status.outputs)`":
        EQUIVALENT + "every task type reports success with its outputs (an empty dict when it has "
        "none); were one to report None, a consumer of a missing output fails either way "
        "(KeyError on {} or TypeError on None), and a task without outputs has no consumer.",
    "_Execution.run_task: `status.message or \"aborted\"` -> `(status.message and 'aborted')`":
        "Not killed, message only: an aborted attempt fails its node without a retry either way "
        "(checked by the cancel tests); only the text of the node's error changes when the task "
        "type gives no message.",
    "_Execution.run_task: `status.message or \"aborted\"` -> `(status.message)`":
        "Not killed, message only (as above).",
    "_Execution.run_task: `status.message or \"aborted\"` -> `('aborted')`":
        "Not killed, message only (as above): the task type's own reason is replaced by 'aborted'.",
    "_Execution.run_task: `user_failures + system_failures` -> `(user_failures - system_failures)`":
        "Killed from now on by test_engine_retry_rules.py::test_the_backoff_counts_system_and_user_"
        "failures_together (checked by hand): its task kills its worker (system), then raises (user); "
        "with the jitter pinned the wait before attempt 3 is 0.8 s, 0.2 s under this mutant.",
    "_Execution._give_up: `await self._stop(_Attempt(task_type, ctx, handle), kind, base, Phase.FAILED, message)` -> `pass`":
        "Killed from now on by test_resume.py::test_a_resume_whose_secret_is_gone_fails_naming_it_"
        "and_stops_the_work_the_old_engine_started (checked by hand): an engine is killed while its "
        "command runs in a session of its own; resumed without the secret, the node must fail naming "
        "it and the old command must be gone.",
    "_Execution._give_up: `handle is not None` -> `handle is None`":
        "Killed from now on by the missing-secret crash test in test_resume.py (checked by hand), "
        "as the next entry.",
    "_Execution._give_up: `error_kind == ErrorKind.SYSTEM` -> `error_kind != ErrorKind.SYSTEM`":
        "Killed from now on by test_engine_retry_rules.py::test_a_missing_secret_is_not_retried_even_"
        "with_a_user_retry_budget (added after the first pass; test_engine's missing-secret test "
        "has no retry budget to spend).",
    "Engine.resume: `options = options or RunOptions()` -> `pass`": RESUME_OPTIONS,
    "Engine.resume: `options or RunOptions()` -> `(options and RunOptions())`": RESUME_OPTIONS,
    "Engine.resume: `options or RunOptions()` -> `(options)`": RESUME_OPTIONS,
    "Engine.resume: `options or RunOptions()` -> `(RunOptions())`": RESUME_OPTIONS,
    "Engine.resume: `max((e.run for e in events), default=0) + 1` -> `(max((e.run for e in events), default=0) - 1)`":
        RESUME_OPTIONS,
    "Engine.resume: `max` -> `min`": RESUME_OPTIONS,
    "Engine.resume: `1` -> `2`": RESUME_OPTIONS,
    "Engine.resume: `0` -> `1`":
        EQUIVALENT + "the default of `max` over an execution's events is used only for an execution "
        "without events, and every stored execution has at least its `running` event.",
    # -- _Prior.of and run_item: found by the first pass, checked again by hand after it ---------
    "_Prior.of: `e.data.get(\"outputs\") or {}` -> `(e.data.get('outputs'))`":
        EQUIVALENT + "node and item `succeeded` events always carry an outputs dict (run_node emits "
        "the dict it returns; an item's is its task type's outputs, as for run_task above).",
    "_Prior.of: `e.kind in (\"attempt\", \"item\") and \"attempt\" in e.data` -> `(e.kind in ('attempt', 'item') or 'attempt' in e.data)`":
        EQUIVALENT + "only attempt and item events carry an `attempt` number, and every one of them does.",
    "_Prior.of: `e.kind in (\"attempt\", \"item\") and \"attempt\" in e.data` -> `(e.kind in ('attempt', 'item'))`":
        EQUIVALENT + "every attempt and item event carries its `attempt` number.",
    "_Prior.of: `e.kind in (\"attempt\", \"item\") and \"attempt\" in e.data` -> `('attempt' in e.data)`":
        EQUIVALENT + "only attempt and item events carry an `attempt` number.",
    "_Prior.of: `e.phase == \"running\" and e.data.get(\"handle\") is not None` -> `(e.phase == 'running' or e.data.get('handle') is not None)`":
        EQUIVALENT + "only the `running` event of an attempt carries its handle, and it always does.",
    "_Prior.of: `e.phase == \"running\" and e.data.get(\"handle\") is not None` -> `(e.phase == 'running')`":
        EQUIVALENT + "an attempt's `running` event always carries its handle.",
    "_Prior.of: `e.phase == \"running\" and e.data.get(\"handle\") is not None` -> `(e.data.get('handle') is not None)`":
        EQUIVALENT + "only the `running` event carries a handle.",
    "_Prior.of: `e.phase in _ENDINGS and prior.open.get(key, (0,))[0] == number` -> `(e.phase in _ENDINGS or prior.open.get(key, (0,))[0] == number)`":
        "Killed from now on by test_secrets.py::test_an_execution_that_failed_for_a_missing_secret_resumes_"
        "once_the_secret_is_set (checked by hand): an attempt that ended without ever running made "
        "this mutant `del` a key that is not there, so resume crashed.",
    "_Prior.of: `e.phase in _ENDINGS and prior.open.get(key, (0,))[0] == number` -> `(e.phase in _ENDINGS)`":
        "Killed from now on by the missing-secret resume test in test_secrets.py (checked by hand).",
    "_Prior.of: `e.phase in _ENDINGS and prior.open.get(key, (0,))[0] == number` -> `(prior.open.get(key, (0,))[0] == number)`":
        EQUIVALENT + "a non-ending event with the open attempt's number after its `running` event is "
        "only `cleanup_failed`, emitted just before that attempt's ending, which closes it anyway.",
    "_Prior.of: `del prior.open[key]` -> `pass`": RESUME_OPTIONS,
    "_Prior.of: `e.phase in _ENDINGS` -> `e.phase not in _ENDINGS`": RESUME_OPTIONS,
    "_Prior.of: `prior.open.get(key, (0,))[0] == number` -> `prior.open.get(key, (0,))[0] != number`": RESUME_OPTIONS,
    "_Prior.of: `0` -> `1`":
        "Three mutants share this key. `prior.attempts.get(key, 0)` -> 1 is equivalent (every "
        "attempt number is >= 1; a cached item's 0 is skipped on resume through its outputs); "
        "`[0]` -> `[1]` is killed by test_resume_options.py; `(0,)` -> `(1,)` is not yet killed: the "
        "missing-secret resume test above would kill it.",
    "_MapNode.run_item: `key is not None and not self.x.options.overwrite_cache` -> `(key is not None or not self.x.options.overwrite_cache)`":
        EQUIVALENT + "without a cache key, `store.cached(None)` finds nothing and the item runs, as it would.",
    "_MapNode.run_item: `key is not None and not self.x.options.overwrite_cache` -> `(not self.x.options.overwrite_cache)`":
        EQUIVALENT + "as above: no cache key, nothing found.",
    "_MapNode.run_item: `key is not None and not self.x.options.overwrite_cache` -> `(key is not None)`":
        "Killed from now on by test_engine.py::test_overwrite_cache_runs_cached_map_items_again "
        "(checked by hand).",
    "_MapNode.run_item: `0` -> `1`":
        "Killed from now on by test_engine.py::test_cached_map_items_are_recorded_as_cached_successes, "
        "which now reads the items' events (checked by hand).",
    "_MapNode.run_item: `True` -> `False`": "Killed from now on: as above (checked by hand).",
    "_MapNode.run_item: `cached = self.x.store.cached(key)` -> `pass`": CACHE,
    "_MapNode.run_item: `key is not None` -> `key is None`": CACHE,
    "_MapNode.run_item: `not self.x.options.overwrite_cache` -> `(self.x.options.overwrite_cache)`": CACHE,
    "_MapNode.run_item: `cached is not None` -> `cached is None`": CACHE,
    "_MapNode.run_item: `self.x.emit(\"item\", f\"{self.path}[{index}]/cached\", \"succeeded\",` -> `pass`": CACHE,
    "_MapNode.run_item: `return cached` -> `return None`": CACHE,
    "_MapNode.run_item: `self.x.store.put_cache(key, template.name, outputs, self.x.id)` -> `pass`": CACHE,
    'check_spec: `check_spec(sub)` -> `pass`': COMPILE,
    'check_spec: `_check_binding(spec, binding, spec.outputs[out], nodes, f"workflow {wf!r}, output {out!r}")` -> `pass`': COMPILE,
    '_check_node: `node.kind == "workflow"` -> `node.kind != \'workflow\'`': COMPILE,
    '_check_node: `continue` -> `break`': COMPILE,
    '_check_binding: `expected.kind != "list"` -> `expected.kind == \'list\'`': COMPILE,
    '_check_binding: `_check_binding(spec, item, expected.args[0], nodes, f"{where}[{i}]")` -> `pass`': COMPILE,
    '_check_binding: `0` -> `1`': COMPILE,
    '_check_binding: `source = f"{binding.node}.{binding.output}"` -> `pass`': COMPILE,
    'TypeEngine.castable: `src.kind == "none" or self.castable(` -> `(self.castable(src.args[0] if src.kind == \'optional\' else src, dst.args[0]))`': COMPILE,
    'TypeEngine.castable: `src.kind == "none"` -> `src.kind != \'none\'`': COMPILE,
    'TypeEngine.castable: `src.kind == "int" and dst.kind == "float"` -> `(dst.kind == \'float\')`': COMPILE,
    'TypeEngine.castable: `False` -> `True`': COMPILE,
    'TypeTransformer.castable: `return src.model_dump() == dst.model_dump()` -> `return None`': COMPILE,
    'TypeTransformer.castable: `src.model_dump() == dst.model_dump()` -> `src.model_dump() != dst.model_dump()`': COMPILE,
}
