"""Patches: JSON merge patch, strategic merge patch (the simple cases) and JSON patch."""

from __future__ import annotations

import copy
from typing import Any

from plait.testing.kubeapi.errors import ApiStatusError, _bad_request
from plait.testing.kubeapi.resources import Obj

# Strategic merge patch: lists merged by a key (patchMergeKey in the core types) ...
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "ports": "containerPort", "conditions": "type", "ownerReferences": "uid",
    "imagePullSecrets": "name", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
}
# ... and lists of scalars merged as sets (patchStrategy: merge without a key).
_MERGE_SETS = {"finalizers"}


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = _merge_patch(result.get(k), v)
    return result


def _strategic_merge(target: Any, patch: Any, key: str | None = None) -> Any:
    """Strategic merge patch, for the simple cases (see the package docstring)."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, v in patch.items():
            if k.startswith("$"):
                continue
            if v is None:
                result.pop(k, None)
            else:
                result[k] = _strategic_merge(result.get(k), v, k)
        return result
    if isinstance(patch, list) and isinstance(target, list):
        if key in _MERGE_SETS:
            return list(target) + [v for v in patch if v not in target]
        merge_key = _MERGE_KEYS.get(key or "")
        if merge_key and all(isinstance(i, dict) for i in patch):
            result_list = copy.deepcopy(target)
            for item in patch:
                idx = next((i for i, old in enumerate(result_list)
                            if isinstance(old, dict) and old.get(merge_key) == item.get(merge_key)),
                           None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        result_list.pop(idx)
                elif idx is None:
                    result_list.append(copy.deepcopy(item))
                else:
                    result_list[idx] = _strategic_merge(result_list[idx], item)
            return result_list
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 JSON patch: add, remove, replace, test, copy, move."""
    doc = copy.deepcopy(doc)

    def parent(path: str) -> tuple[Any, str]:
        parts = _pointer(path)
        if not parts:
            raise _bad_request("the root of the object cannot be patched")
        cur: Any = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]

    def get(path: str) -> Any:
        cur: Any = doc
        for p in _pointer(path):
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def add(path: str, value: Any) -> None:
        cont, last = parent(path)
        if isinstance(cont, list):
            cont.insert(len(cont) if last == "-" else int(last), value)
        else:
            cont[last] = value

    def remove(path: str) -> Any:
        cont, last = parent(path)
        return cont.pop(int(last)) if isinstance(cont, list) else cont.pop(last)

    try:
        for op in ops:
            kind, path = op.get("op"), op.get("path", "")
            if kind == "add":
                add(path, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op.get("value")))
            elif kind == "test":
                if get(path) != op.get("value"):
                    raise ApiStatusError(422, "Invalid",
                                         f"the server rejected our request due to an error in "
                                         f"our request: testing value {path} failed")
            elif kind == "move":
                add(path, remove(op["from"]))
            elif kind == "copy":
                add(path, copy.deepcopy(get(op["from"])))
            else:
                raise _bad_request(f"Unexpected kind: {kind}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise ApiStatusError(422, "Invalid",
                             f"the server rejected our request due to an error in our "
                             f"request: {exc}")
    return doc
