"""Plugin discovery through real entry points of the ``plait`` group.

Each test installs fake distributions the way pip does: a ``<name>-<version>.dist-info``
folder (``METADATA`` and ``entry_points.txt``) and the plugin module, in a folder on
``sys.path``. The registry is built with :func:`plait.plugins.build_registry`, never the
process-wide cached one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import plait
import plait.plugins.registry
import pytest
from plait.model.errors import PluginConflictError, PluginError
from plait.plugins.registry import PluginInfo, Registry, build_registry

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BUILTINS = {
    "python": "plait.builtin.python_task",
    "container": "plait.builtin.container_task",
    "types": "plait.types.builtin",
    "local": "plait.builtin.local_platform",
}

# A third-party task type, as a plugin author would write it.
ACME = textwrap.dedent('''
    from plait import hookimpl
    from plait.model.status import Status
    from plait.plugins.tasktype import TaskConfig, TaskType


    class Echo(TaskConfig):
        task_type = "acme.echo"
        message: str


    class EchoTask(TaskType):
        name = "acme.echo"
        config_model = Echo

        def submit(self, ctx, task):
            return {"message": task.config["message"]}

        def poll(self, ctx, handle):
            return Status.succeeded({"o0": handle["message"]})

        def abort(self, ctx, handle):
            pass

        def cleanup(self, ctx, handle):
            pass


    @hookimpl
    def plait_task_types(register):
        register(EchoTask())
''')


def task_type_module(type_name: str, *, hooks: tuple[str, ...] = ("submit", "poll", "abort", "cleanup"),
                     class_name: str = "Custom") -> str:
    """A plugin module registering one task type that overrides only ``hooks``."""
    methods = "\n".join(
        f"    def {hook}(self, ctx, handle):\n        return None\n" for hook in hooks
    ) or "    pass\n"
    return (
        "from plait import hookimpl\n"
        "from plait.sdk import TaskType\n\n\n"
        f"class {class_name}(TaskType):\n"
        f"    name = {type_name!r}\n\n"
        f"{methods}\n\n"
        "@hookimpl\n"
        "def plait_task_types(register):\n"
        f"    register({class_name}())\n"
    )


class Site:
    """A folder on sys.path where fake distributions get installed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def install(self, dist: str, entry_points: dict[str, str], modules: dict[str, str],
                version: str = "1.0") -> None:
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
        (info / "entry_points.txt").write_text(f"[plait]\n{lines}")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(source)
            self.modules.append(module)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.delenv("PLAIT_PLUGINS", raising=False)
    monkeypatch.delenv("PLAIT_TRACE_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(root))
    fake = Site(root)
    yield fake
    for module in fake.modules:  # the next test installs its own module of the same name
        sys.modules.pop(module, None)
    plait.plugins.registry.reset_registry()


@pytest.fixture
def build():
    """build_registry(), closing the task types it created afterwards (worker pools)."""
    built: list[Registry] = []

    def _build() -> Registry:
        registry = build_registry()
        built.append(registry)
        return registry

    yield _build
    for registry in built:
        for task_type in registry.task_types.values():
            task_type.close()


def cli_env(site: Site, **extra: str) -> dict[str, str]:
    env = dict(os.environ)  # the site fixture already cleared PLAIT_PLUGINS and PLAIT_TRACE_PLUGINS
    env.update(PYTHONPATH=str(site.root), COLUMNS="200", NO_COLOR="1", **extra)
    return env


# ---------------------------------------------------------------------------------------
# Built-ins
# ---------------------------------------------------------------------------------------


def test_builtin_task_types_come_from_the_plait_distributions_entry_points(site: Site, build):
    registry = build()
    assert registry.task_type_owner["python"] == PluginInfo("python", BUILTINS["python"], "plait",
                                                            plait.__version__)
    assert registry.task_type_owner["container"] == PluginInfo("container", BUILTINS["container"],
                                                               "plait", plait.__version__)
    assert type(registry.task_types["python"]).__module__ == BUILTINS["python"]
    assert type(registry.task_types["container"]).__module__ == BUILTINS["container"]


def test_builtin_value_types_come_from_the_types_entry_point(site: Site, build, monkeypatch):
    monkeypatch.setenv("PLAIT_PLUGINS", ",".join(BUILTINS))  # installed integrations add types too
    registry = build()
    types = next(p for p in registry.plugins if p.name == "types")
    assert types == PluginInfo("types", BUILTINS["types"], "plait", plait.__version__)
    assert registry.transformers, "the types plugin registered no value types"
    assert {type(t).__module__ for t in registry.transformers} == {BUILTINS["types"]}


# ---------------------------------------------------------------------------------------
# Third-party plugins
# ---------------------------------------------------------------------------------------


def test_a_third_party_task_type_is_found_with_its_distribution(site: Site, build):
    site.install("plait-acme", {"acme": "acme_plait"}, {"acme_plait": ACME}, version="1.0")
    registry = build()
    echo = registry.task_types["acme.echo"]
    assert echo.config_model is not None and echo.config_model.__name__ == "Echo"
    assert echo.config_model(message="hi").message == "hi"
    assert registry.task_type_owner["acme.echo"] == PluginInfo("acme", "acme_plait", "plait-acme", "1.0")
    assert {"python", "container"} <= set(registry.task_types)


MONEY = textwrap.dedent('''
    from dataclasses import dataclass
    from decimal import Decimal

    from plait import hookimpl
    from plait.model.errors import TypeMismatchError
    from plait.model.typespec import TypeSpec
    from plait.types.engine import TypeTransformer


    @dataclass(frozen=True)
    class Money:
        amount: Decimal
        currency: str


    class MoneyType(TypeTransformer):
        name = "acme.money"
        kinds = ("acme.money",)

        def matches(self, tp):
            return tp is Money

        def spec(self, tp, engine):
            return TypeSpec(kind="acme.money")

        def codec(self, tp, engine, io):
            def encode(value):
                if not isinstance(value, Money):
                    raise TypeMismatchError(f"expected Money, got {type(value).__name__}")
                return f"{value.amount} {value.currency}"

            def decode(text):
                amount, currency = text.split()
                return Money(Decimal(amount), currency)

            return encode, decode


    @hookimpl
    def plait_types(register):
        register(MoneyType())
''')


def test_a_plugin_adds_a_value_type_through_the_plait_types_hook(site: Site, build):
    from plait.types.engine import TypeEngine, ValueIO

    site.install("plait-money", {"money": "money_plait"}, {"money_plait": MONEY})
    registry = build()
    money = sys.modules["money_plait"]
    types = TypeEngine(registry.transformers)
    assert types.spec(money.Money).kind == "acme.money"
    assert types.spec(list[money.Money]).describe() == "list[acme.money]"
    encode, decode = types.codec(list[money.Money], ValueIO(None))
    value = [money.Money(__import__("decimal").Decimal("12.50"), "EUR")]
    assert encode(value) == ["12.50 EUR"]
    assert decode(encode(value)) == value
    assert types.castable(types.spec(money.Money), types.spec(money.Money | None))
    assert not types.castable(types.spec(money.Money), types.spec(str))


def test_plait_plugins_lists_a_third_party_task_type_with_distribution_and_version(site: Site):
    site.install("plait-acme", {"acme": "acme_plait"}, {"acme_plait": ACME}, version="1.0")
    proc = subprocess.run(check=False, args=[str(VENV_BIN / "plait"), "plugins"], env=cli_env(site), cwd=site.root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in proc.stdout.splitlines()
            if "│" in line]
    assert ["acme.echo", "acme", "plait-acme", "1.0"] in rows, proc.stdout
    assert ["python", "python", "plait", plait.__version__] in rows, proc.stdout


def test_a_plugin_that_fails_to_import_is_reported_by_name_and_the_others_load(
        site: Site, build, capsys: pytest.CaptureFixture[str]):
    site.install("plait-acme", {"acme": "acme_plait"}, {"acme_plait": ACME})
    site.install("plait-broken", {"broken": "broken_plait"},
                 {"broken_plait": 'raise ImportError("needs the frobnicator library")\n'})
    registry = build()
    assert "ImportError: needs the frobnicator library" in registry.failed["broken"]
    assert "'broken'" in capsys.readouterr().err
    assert {"python", "container", "acme.echo"} <= set(registry.task_types)
    assert "broken" not in {p.name for p in registry.plugins}


def test_two_plugins_registering_the_same_task_type_name_conflict(site: Site, build):
    site.install("plait-one", {"one": "one_plait"}, {"one_plait": task_type_module("dup")})
    site.install("plait-two", {"two": "two_plait"}, {"two_plait": task_type_module("dup")})
    with pytest.raises(PluginConflictError) as excinfo:
        build()
    message = str(excinfo.value)
    assert "'dup'" in message
    assert "'one'" in message and "'two'" in message


def test_a_task_type_that_does_not_implement_poll_is_rejected(site: Site, build):
    site.install("plait-nopoll", {"nopoll": "nopoll_plait"},
                 {"nopoll_plait": task_type_module("nopoll", hooks=("submit", "abort", "cleanup"))})
    with pytest.raises(PluginError, match=r"plugin 'nopoll'.*poll\(\)"):
        build()


@pytest.mark.parametrize("bad_name", ["Spark", "has space", "", "1st"])
def test_a_task_type_with_an_invalid_name_is_rejected(site: Site, build, bad_name: str):
    site.install("plait-badname", {"badname": "badname_plait"},
                 {"badname_plait": task_type_module(bad_name)})
    with pytest.raises(PluginError, match=r"plugin 'badname'") as excinfo:
        build()
    assert repr(bad_name) in str(excinfo.value)


# ---------------------------------------------------------------------------------------
# Environment switches
# ---------------------------------------------------------------------------------------


def test_PLAIT_PLUGINS_loads_only_the_named_entry_points(site: Site, build,
                                                        monkeypatch: pytest.MonkeyPatch):
    site.install("plait-acme", {"acme": "acme_plait"}, {"acme_plait": ACME})
    site.install("plait-broken", {"broken": "broken_plait"},
                 {"broken_plait": 'raise ImportError("must not be imported")\n'})
    monkeypatch.setenv("PLAIT_PLUGINS", "python")
    registry = build()
    assert [p.name for p in registry.plugins] == ["python"]
    assert set(registry.task_types) == {"python"}
    assert registry.failed == {}
    assert "acme_plait" not in sys.modules


def test_PLAIT_TRACE_PLUGINS_prints_each_plugin_as_it_loads(
        site: Site, build, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    site.install("plait-acme", {"acme": "acme_plait"}, {"acme_plait": ACME})
    monkeypatch.setenv("PLAIT_TRACE_PLUGINS", "1")
    build()
    err = capsys.readouterr().err
    for name, module in {**BUILTINS, "acme": "acme_plait"}.items():
        assert f"loading plugin {name} ({module})" in err, err
    assert "plait-acme 1.0" in err


def test_plugins_load_silently_without_PLAIT_TRACE_PLUGINS(site: Site, build,
                                                          capsys: pytest.CaptureFixture[str]):
    site.install("plait-acme", {"acme": "acme_plait"}, {"acme_plait": ACME})
    build()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------
# Importing plait
# ---------------------------------------------------------------------------------------


def test_importing_plait_imports_no_plugin_module(site: Site):
    site.install("plait-acme", {"acme": "acme_plait"}, {"acme_plait": ACME})
    code = textwrap.dedent("""
        import importlib.metadata, json, sys
        import plait
        modules = sorted(ep.value for ep in importlib.metadata.entry_points(group="plait"))
        print(json.dumps({"plugins": modules, "imported": [m for m in modules if m in sys.modules]}))
    """)
    proc = subprocess.run(check=False, args=[sys.executable, "-c", code], env=cli_env(site), cwd=site.root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert set(seen["plugins"]) >= {*BUILTINS.values(), "acme_plait"}  # the check covers them
    assert seen["imported"] == []


BLOCKER = textwrap.dedent('''
    """Make heavy optional dependencies unimportable in this process and its children."""
    import sys

    BLOCKED = {"pyspark", "torch", "boto3"}


    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None


    sys.meta_path.insert(0, Blocker())
''')


def test_plait_runs_a_workflow_without_pyspark_torch_or_boto3(tmp_path: Path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)  # loaded by every process, workers too
    code = textwrap.dedent("""
        import json, sys
        for name in ("pyspark", "torch", "boto3"):
            try:
                __import__(name)
            except ModuleNotFoundError:
                pass
            else:
                raise SystemExit(f"{name} is importable: the blocker does not work")
        import plait
        import flows
        execution = plait.run(flows.arithmetic, {"a": 1})
        print(json.dumps({"phase": execution.phase.value, "outputs": execution.outputs,
                          "heavy": [m for m in ("pyspark", "torch", "boto3") if m in sys.modules]}))
    """)
    env = {**os.environ, "PYTHONPATH": str(blocker), "PLAIT_HOME": str(tmp_path / "home")}
    proc = subprocess.run(check=False, args=[sys.executable, "-c", code], env=env, cwd=ROOT / "tests",
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"phase": "succeeded", "outputs": {"o0": 6}, "heavy": []}
