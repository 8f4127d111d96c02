"""Label and field selectors: parsed from a request's query, matched against objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plait.testing.kubeapi.errors import _bad_request
from plait.testing.kubeapi.resources import Obj, ResourceType


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        return not has  # "!"


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _parse_label_selector(text: str | None) -> list[_Requirement]:
    if not text:
        return []
    reqs: list[_Requirement] = []
    for part in _split_top(text):
        words = part.split()
        if len(words) >= 2 and words[1] in ("in", "notin"):
            rest = part.split(None, 2)[2].strip() if len(part.split(None, 2)) > 2 else ""
            if not (rest.startswith("(") and rest.endswith(")")):
                raise _bad_request(f"unable to parse requirement: found '{rest}', expected: '('")
            values = tuple(v.strip() for v in rest[1:-1].split(",") if v.strip())
            reqs.append(_Requirement(words[0], words[1], values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(_Requirement(k.strip(), "!=", (v.strip(),)))
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append(_Requirement(k.strip(), "=", (v.strip(),)))
        elif part.startswith("!"):
            reqs.append(_Requirement(part[1:].strip(), "!"))
        elif len(words) == 1:
            reqs.append(_Requirement(part, "exists"))
        else:
            raise _bad_request(f"unable to parse requirement: {part!r}")
    return reqs


def _parse_field_selector(text: str | None, rt: ResourceType) -> list[tuple[str, str, str]]:
    if not text:
        return []
    allowed = ("metadata.name", "metadata.namespace", *rt.field_labels)
    out: list[tuple[str, str, str]] = []
    for part in _split_top(text):
        if "!=" in part:
            k, v = part.split("!=", 1)
            op = "!="
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            op = "="
        else:
            raise _bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        k = k.strip()
        if k not in allowed:
            raise _bad_request(f'field label not supported: {k}')
        out.append((k, op, v.strip()))
    return out


def _field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


@dataclass
class _Selector:
    namespace: str | None = None
    labels: list[_Requirement] = field(default_factory=list)
    fields: list[tuple[str, str, str]] = field(default_factory=list)

    def matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        labels = meta.get("labels") or {}
        if not all(r.matches(labels) for r in self.labels):
            return False
        for path, op, value in self.fields:
            actual = _field_value(obj, path)
            if (actual == value) != (op == "="):
                return False
        return True
