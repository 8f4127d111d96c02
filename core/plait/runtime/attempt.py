"""Running one attempt of a Python task: in a worker process, inline, or in a pod.

:func:`run_attempt` takes a small picklable payload (where the function lives, the input
literals, the blob store URL) and returns a result dict; it never raises for a failure of
the user's code. ``python -m plait.worker PAYLOAD.json RESULT.json`` does the same from a
command line, which is how task types that run in their own process (Spark, a container
on Kubernetes) reuse it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from plait.model.errors import PermanentError, PlaitError, RetryableError
from plait.runtime.context import Checkpoint, TaskContext, _context
from plait.storage.blobs import BlobStore
from plait.types.engine import Codec, ValueIO, compile_codecs, decode_values, encode_values

_tasks: dict[tuple[str, str, str | None], Any] = {}
_blobs: dict[str, BlobStore] = {}
_codecs: dict[tuple[int, str], tuple[ValueIO, dict[str, Codec], dict[str, Codec]]] = {}


def load_task(module: str, qualname: str, file: str | None) -> Any:
    """Import the task object ``module.qualname``, loading ``file`` if the module is not importable."""
    key = (module, qualname, file)
    if key in _tasks:
        return _tasks[key]
    if "<locals>" in qualname:
        raise ImportError(f"{qualname} is defined inside a function, so a worker process cannot import it; "
                          "define the task at module level (or run with --inline)")
    mod = None
    if module != "__main__":
        try:
            mod = importlib.import_module(module)
        except ImportError:
            if not file:
                raise
    if mod is None:
        name = "__plait_main__" if module == "__main__" else module
        mod = sys.modules.get(name)
        if mod is None:
            assert file, f"cannot import {module}"
            spec = importlib.util.spec_from_file_location(name, file)
            assert spec and spec.loader
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            sys.path.insert(0, str(Path(file).parent))
            spec.loader.exec_module(mod)
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part)
    _tasks[key] = obj
    return obj


def _blob_store(url: str) -> BlobStore:
    store = _blobs.get(url)
    if store is None:
        store = _blobs[url] = BlobStore(url)
    return store


def run_attempt(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt of a Python task and return its result (never raises for user errors)."""
    ref = payload["ref"]
    where = f"task {payload['task']}"
    try:
        task = load_task(ref["module"], ref["qualname"], ref.get("file"))
    except Exception as exc:
        return _failure(f"cannot import {ref['module']}.{ref['qualname']}: {exc!r}", retryable=False,
                        error_kind="user", tb=traceback.format_exc())
    blobs = _blob_store(payload["blobs"])
    # Codecs are compiled once per task and blob store: a map runs this per item.
    key = (id(task), payload["blobs"])
    if key not in _codecs:
        vio = ValueIO(blobs, where=where)
        _codecs[key] = (vio, compile_codecs(task.inputs, vio), compile_codecs(task.outputs, vio))
    vio, in_codecs, out_codecs = _codecs[key]
    ctx = TaskContext(
        execution_id=payload["execution_id"], node_id=payload["node_id"],
        attempt_id=payload["attempt_id"], attempt=payload["attempt"],
        checkpoint=Checkpoint(blobs, payload["checkpoint_uri"]), item_index=payload.get("item_index"),
        secrets=payload.get("secrets") or {}, extras=payload.get("extras") or {},
        _scratch_root=payload.get("scratch_root"),
    )
    token = _context.set(ctx)
    env = payload.get("env") or {}
    saved_env = {k: os.environ.get(k) for k in env}
    if env:  # os.environ.update costs microseconds even when empty: a map calls this per item
        os.environ.update(env)
    try:
        try:
            kwargs = decode_values(payload["inputs"], task.inputs, vio, what="input", codecs=in_codecs)
        except PlaitError as exc:
            return _failure(str(exc), retryable=False, error_kind="user")
        except Exception as exc:  # the blob store is unreachable, a blob is corrupt: worth a retry
            return _failure(f"{where}: reading the inputs failed: {_describe(exc)}", retryable=True,
                            error_kind="system", tb=traceback.format_exc())
        if payload.get("dynamic"):
            return _run_dynamic(task, kwargs)
        try:
            result = task.fn(**kwargs)
        except RetryableError as exc:
            return _failure(_describe(exc), retryable=True, error_kind="user", tb=traceback.format_exc())
        except PermanentError as exc:
            return _failure(_describe(exc), retryable=False, error_kind="user", tb=traceback.format_exc())
        except Exception as exc:
            return _failure(_describe(exc), retryable=True, error_kind="user", tb=traceback.format_exc())
        if payload.get("discard_outputs"):  # another process reports this attempt's outputs
            return {"status": "succeeded", "outputs": {}}
        try:
            outputs = _outputs_dict(task, result)
            literals = encode_values(outputs, task.outputs, vio, what="output", codecs=out_codecs)
        except PlaitError as exc:
            return _failure(str(exc), retryable=False, error_kind="user")
        except Exception as exc:
            return _failure(f"{where}: storing the outputs failed: {_describe(exc)}", retryable=True,
                            error_kind="system", tb=traceback.format_exc())
        return {"status": "succeeded", "outputs": literals}
    finally:
        _context.reset(token)
        for key, old in saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _run_dynamic(task: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    from plait.authoring.decorators import trace_workflow

    try:
        spec = trace_workflow(task.fn, task.name, values=kwargs)
    except PlaitError as exc:
        return _failure(str(exc), retryable=False, error_kind="user")
    except Exception as exc:
        return _failure(_describe(exc), retryable=True, error_kind="user", tb=traceback.format_exc())
    return {"status": "succeeded", "spec": spec.model_dump(mode="json")}


def _outputs_dict(task: Any, result: Any) -> dict[str, Any]:
    names = list(task.outputs)
    if not names:
        return {}
    if names == ["o0"]:
        return {"o0": result}
    if not isinstance(result, tuple) or len(result) != len(names):
        raise PlaitError(f"task {task.name} must return {len(names)} values ({', '.join(names)}), got {result!r:.80}")
    return dict(zip(names, result))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _failure(message: str, *, retryable: bool, error_kind: str, tb: str = "") -> dict[str, Any]:
    return {"status": "failed", "message": message, "retryable": retryable,
            "error_kind": error_kind, "traceback": tb}


def main(argv: list[str] | None = None) -> int:
    """``python -m plait.worker PAYLOAD.json RESULT.json``: run one attempt from files."""
    args = sys.argv[1:] if argv is None else argv
    payload = json.loads(Path(args[0]).read_text())
    result = run_attempt(payload)
    tmp = args[1] + ".tmp"
    Path(tmp).write_text(json.dumps(result))
    os.replace(tmp, args[1])
    if result["status"] == "failed":
        print(result.get("traceback") or result["message"], file=sys.stderr)
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
