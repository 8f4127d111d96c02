"""Plugins use only the public surface: ``plait``, ``plait.sdk`` and ``plait.testing``.

Everything else under ``plait.`` is free to move; a plugin that reaches into it breaks the
day it does. This reads every module of every plugin in the repository (the seven
distributions under ``plugins/``) and fails naming the file, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import plait
import plait.sdk
import plait.testing

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"plait", "plait.sdk", "plait.testing"}


def plait_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``plait`` module in ``path``, in functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "plait":  # `from plait import sdk` names a module too
                modules += [f"plait.{a.name}" for a in node.names if a.name.islower()
                            and not hasattr(plait, a.name)]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, m) for m in modules if m == "plait" or m.startswith("plait.")]
    return found


def plugin_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "plugins").glob("*/plait_*/**/*.py"))


def test_every_plugin_imports_only_the_public_surface() -> None:
    modules = plugin_modules()
    assert len({p.parts[len(ROOT.parts) + 1] for p in modules}) == 7, "expected the seven plugin distributions"
    offenders = [f"{p.relative_to(ROOT)}:{line}: imports {module}"
                 for p in modules for line, module in plait_imports(p) if module not in PUBLIC]
    assert not offenders, ("plugins may import only plait, plait.sdk and plait.testing; add what they need "
                           "to plait/sdk.py instead:\n" + "\n".join(offenders))


def test_the_check_sees_an_import_of_a_private_module(tmp_path: Path) -> None:
    module = tmp_path / "hooks.py"
    module.write_text("def f():\n    from plait.engine.execution import Engine\n    import plait.sdk\n")
    assert plait_imports(module) == [(2, "plait.engine.execution"), (3, "plait.sdk")]


def test_the_sdk_exports_what_it_lists() -> None:
    missing = [name for name in plait.sdk.__all__ if not hasattr(plait.sdk, name)]
    assert not missing
    assert {"hookimpl", "TaskType", "ProcessTask", "TypeTransformer", "read_job"} <= set(plait.sdk.__all__)
    assert plait.testing.TaskTypeLifecycleTests is not None
