"""Deterministic object names and the labels every plait object carries (pure: no I/O).

An attempt's object is named from its attempt id alone, so an engine that restarts and
submits again asks for the same name and attaches (see :mod:`.objects`). Every object gets
the ``plait.dev/*`` labels below, so ``plait executions abort`` and a cleanup sweep find all of
an execution's objects with one label selector, whatever kind they are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

LABEL_PREFIX = "plait.dev/"
EXECUTION_LABEL = LABEL_PREFIX + "execution"
MANAGED_BY = ("app.kubernetes.io/managed-by", "plait")

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_HASH = 10  # hex digits of sha256: 40 bits, enough to keep distinct ids apart in one namespace


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH]


def object_name(attempt_id: str, max_length: int = 63) -> str:
    """The DNS-1123 label naming ``attempt_id``'s object: the same on every call, on every engine.

    ``plait-<readable part of the id>-<hash of the whole id>``: the hash keeps two ids apart
    even where their readable parts are cut or sanitised to the same text; ``plait-`` makes it
    start with a letter, so it is also a valid Service name (DNS-1035), which operators derive
    from a job's name. Pass a smaller ``max_length`` to leave room for suffixes an operator
    appends (``-driver``, ``-master-0``).
    """
    if max_length < 6 + 1 + _HASH:
        raise ValueError(f"max_length {max_length} leaves no room for the name's hash")
    readable = re.sub(r"[^a-z0-9]+", "-", attempt_id.lower()).strip("-")
    room = max_length - len("plait-") - 1 - _HASH
    readable = readable[:room].rstrip("-")
    return f"plait-{readable}-{_digest(attempt_id)}" if readable else f"plait-{_digest(attempt_id)}"


def label_value(text: str) -> str:
    """``text`` as a label value: itself when valid, else a sanitised prefix and its hash.

    Valid values (at most 63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends) are
    kept as they are, so ``kubectl get pods -l plait.dev/node=train`` works; any other text
    maps to one stable value that no other text maps to (bar a hash collision).
    """
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[: 63 - 1 - _HASH]
    readable = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", readable)
    return f"{readable}-{_digest(text)}" if readable else _digest(text)


def execution_selector(execution_id: str) -> str:
    """The label selector matching every object of the execution, whatever its kind."""
    return f"{EXECUTION_LABEL}={label_value(execution_id)}"


@dataclass(frozen=True)
class ObjectIdentity:
    """Who an object belongs to: its attempt, node, execution, tenant and task type."""

    execution_id: str
    node_id: str
    attempt_id: str
    project: str
    domain: str
    task_type: str

    def name(self, max_length: int = 63) -> str:
        """The object's deterministic name (see :func:`object_name`)."""
        return object_name(self.attempt_id, max_length)

    def labels(self) -> dict[str, str]:
        """The labels every object of this attempt carries, each a valid label value."""
        raw = self._raw()
        labels = {LABEL_PREFIX + key: label_value(value) for key, value in raw.items()}
        labels[MANAGED_BY[0]] = MANAGED_BY[1]
        return labels

    def annotations(self) -> dict[str, str]:
        """The full ids, for the labels that had to be hashed (annotations have no length limit)."""
        return {LABEL_PREFIX + key: value for key, value in self._raw().items()
                if label_value(value) != value}

    def selector(self) -> str:
        """The label selector of this attempt's objects."""
        return f"{LABEL_PREFIX}attempt={label_value(self.attempt_id)}"

    def _raw(self) -> dict[str, str]:
        return {"execution": self.execution_id, "node": self.node_id,
                "attempt": self.attempt_id, "project": self.project, "domain": self.domain,
                "task-type": self.task_type}
