"""Reading a workflow and its inputs as a user gives them: ``FILE.py:NAME`` and ``--name value``.

The command line and the server both call these, so an input is read the same way wherever
it is typed.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import importlib.util
import json
import sys
import typing
from pathlib import Path
from typing import Any

from plait.authoring.decorators import Workflow, _signature_types
from plait.model.errors import InputError
from plait.types.engine import optional_arg
from plait.types.files import Directory, File


def load_workflow(target: str) -> Any:
    """Import ``path/to/file.py:name`` (or ``package.module:name``) and return the workflow."""
    if ":" not in target:
        raise InputError(f"expected FILE:WORKFLOW (for example examples/bigfoot.py:hunt), got {target!r}")
    where, name = target.rsplit(":", 1)
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.exists():
            raise InputError(f"no such file: {where}")
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    wf = getattr(module, name, None)
    if not isinstance(wf, Workflow):
        found = [k for k, v in vars(module).items() if isinstance(v, Workflow)]
        raise InputError(f"{where} has no workflow {name!r}; workflows there: {', '.join(found) or 'none'}")
    return wf


def parse_inputs(wf: Any, args: list[str]) -> dict[str, Any]:
    """Parse ``--name value`` pairs using the workflow's typed interface."""
    types, _, _ = _signature_types(wf.fn, "workflow")
    values: dict[str, Any] = {}
    for key, raw in input_flags(args):
        name = key.replace("-", "_")
        if name not in types:
            flags = ", ".join("--" + n.replace("_", "-") for n in types) or "none"
            raise InputError(f"workflow {wf.name} has no input --{key}; its inputs are {flags}")
        values[name] = parse_value(raw, types[name], f"--{key}")
    return values


def input_flags(args: list[str]) -> list[tuple[str, str]]:
    """``--name value`` (or ``--name=value``) pairs as (name as typed, text), in order."""
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise InputError(f"unexpected argument {arg!r}; workflow inputs are given as --name value")
        key, eq, raw = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise InputError(f"--{key} needs a value")
            raw = args[i + 1]
            i += 1
        i += 1
        pairs.append((key, raw))
    return pairs


def parse_value(raw: str, tp: Any, flag: str) -> Any:
    """Turn command-line text into a value of type ``tp`` (JSON for structured values)."""
    inner = optional_arg(tp)
    if inner is not None:
        return None if raw.lower() in ("none", "null") else parse_value(raw, inner, flag)
    try:
        if tp is str:
            return raw
        if tp is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError("expected true or false")
        if tp in (int, float):
            return tp(raw)
        if tp is dt.datetime:
            return dt.datetime.fromisoformat(raw)
        if tp is dt.date:
            return dt.date.fromisoformat(raw)
        if tp is dt.timedelta:
            return dt.timedelta(seconds=float(raw))
        if tp in (File, Directory):
            return tp(raw)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return tp(raw)
        value = json.loads(raw)
        if typing.get_origin(tp) is None and isinstance(tp, type) and isinstance(value, dict):
            return tp(**value)
        return value
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        name = getattr(tp, "__name__", str(tp))
        raise InputError(f"{flag}: cannot read {raw!r} as {name}: {exc}") from None

