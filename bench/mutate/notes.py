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
        "Not yet killed: the backoff counts user and system failures together, which shows only "
        "when an attempt fails both ways (test_engine's backoff test fails one way only); a test "
        "needs a task that dies once (system) and then raises (user) and a wait measured after both.",
    "_Execution._give_up: `await self._stop(_Attempt(task_type, ctx, handle), kind, base, Phase.FAILED, message)` -> `pass`":
        "Not yet killed: an attempt re-attached by a resume that can no longer start (its secret "
        "gone, its pools unknown) must abort and clean up the work the old engine started; no "
        "resume test takes that path (a crash test of issue 13 could: remove the secret, resume).",
    "_Execution._give_up: `handle is not None` -> `handle is None`": "Not yet killed: the same path as above.",
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
}
