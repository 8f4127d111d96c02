"""Registering a module or a package: its workflows, tasks and launch plans under one version.

``plait register PATH --version V`` (and the server's register route) run three steps:

1. :func:`collect` imports the file or the package folder ``PATH`` and finds every workflow,
   task and launch plan defined in it;
2. :func:`build_registration` compiles them, packs the code their Python tasks import from
   into the content-addressed archive of :mod:`plait.runtime.code` (the one the Kubernetes
   platform ships to pods), hands it to a ``ship`` function (which stores it and says where)
   and makes the entity bodies: each task's template, each workflow as a
   :class:`~plait.model.registered.RegisteredWorkflow` with its :class:`CodeRef`, each launch
   plan as a :class:`~plait.model.registered.LaunchPlanSpec`, and a default launch plan named
   as each workflow;
3. :func:`register_local` writes them to a local entity store, all or none
   (:meth:`EntityStore.register_all`), or the command line sends them to a server.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from plait.authoring.decorators import Task, Workflow
from plait.authoring.launchplan import LaunchPlan, label_problem
from plait.model.errors import CompileError, InputError
from plait.model.registered import CodeRef, LaunchPlanSpec, RegisteredWorkflow
from plait.model.schedule_times import check_schedule
from plait.model.spec import TaskTemplate, WorkflowSpec
from plait.runtime.code import Archive, archive, source_root
from plait.storage.blobs import BlobStore
from plait.storage.entities import EntityStore, NewEntity, RegisterResult, digest

# -- finding what a module defines -------------------------------------------------------------


@dataclass
class Collected:
    """What :func:`collect` found under ``root`` (the folder it imported from)."""

    root: Path
    modules: list[str]
    workflows: list[Workflow] = field(default_factory=list)
    tasks: list[Task[Any]] = field(default_factory=list)
    launch_plans: list[LaunchPlan] = field(default_factory=list)


def collect(path: str | Path) -> Collected:
    """Import the module file or package folder ``path`` (a plain folder: every module in it)
    and find the workflows, tasks and launch plans defined there.

    Modules are imported afresh, as the files are now, under their package's dotted names; the
    folder above the outermost package is put on ``sys.path``. An unnamed launch plan is named
    ``<module>.<variable>``.
    """
    root, names = _module_names(Path(path))
    modules = _import_fresh(root, names)
    found = Collected(root, [m.__name__ for m in modules])
    seen: set[int] = set()
    for module in modules:
        for attr, value in sorted(vars(module).items()):
            if id(value) in seen:
                continue
            if isinstance(value, LaunchPlan):
                if value.module not in (None, module.__name__):
                    continue  # imported here: it is found (and named) in the module that defines it, if collected
                if value.name is None:
                    value.name = f"{module.__name__}.{attr}"
                found.launch_plans.append(value)
            elif isinstance(value, Workflow) and value.fn.__module__ in found.modules:
                found.workflows.append(value)
            elif isinstance(value, Task) and value.fn.__module__ in found.modules:
                found.tasks.append(value)
            else:
                continue
            seen.add(id(value))
    for plan in found.launch_plans:
        if plan.workflow not in found.workflows:
            found.workflows.append(plan.workflow)
    return found


def _module_names(path: Path) -> tuple[Path, list[str]]:
    """The folder to import from and the dotted names of the modules ``path`` holds."""
    path = path.resolve()
    if not path.exists():
        raise InputError(f"no such file or folder: {path}; plait register takes a module file or a package folder")
    if path.is_file():
        if path.suffix != ".py":
            raise InputError(f"{path} is not a Python module (.py file) or a package folder")
        root, parts = path.parent, [] if path.name == "__init__.py" else [path.stem]
    else:
        root, parts = path, []
        if not (path / "__init__.py").exists():  # a plain folder: its modules are top-level
            return root, [m.name for m in pkgutil.iter_modules([str(root)])]
    while (root / "__init__.py").exists() and root.parent != root:
        parts.insert(0, root.name)
        root = root.parent
    return root, [".".join(parts)]


def _import_fresh(root: Path, names: list[str]) -> list[ModuleType]:
    tops = {name.split(".")[0] for name in names}
    for loaded in [m for m in sys.modules if m.split(".")[0] in tops]:
        del sys.modules[loaded]  # another copy, or this one before an edit: read the files as they are now
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    modules: list[ModuleType] = []
    for name in names:
        module = _import(name, root)
        modules.append(module)
        if hasattr(module, "__path__"):  # a package: every module under it
            for sub in pkgutil.walk_packages(module.__path__, prefix=name + ".", onerror=lambda n: None):
                modules.append(_import(sub.name, root))
    return modules


def _import(name: str, root: Path) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise InputError(f"cannot import {name} (from {root}): {exc}") from exc


# -- building the entities ---------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """A set to register under ``version``: the entities, and the code archive they point at."""

    version: str
    entities: list[NewEntity]
    archive: Archive | None


Ship = Callable[[Archive], str]
"""Stores a code archive (once per digest) and returns its URI in the blob store."""


def build_registration(found: Collected, version: str, ship: Ship | None = None,
                       blobs: BlobStore | None = None) -> Registration:
    """Compile what ``found`` holds and make its entities under ``version``. The code archive is
    passed to ``ship`` once every workflow compiled; launch plans' file inputs go to ``blobs``."""
    check_version(version)
    specs: dict[str, WorkflowSpec] = {}
    for wf in found.workflows:  # compiling checks each graph before anything is shipped
        if specs.setdefault(wf.name, wf.spec) != wf.spec:
            raise CompileError(f"two different workflows are both named {wf.name!r}; give one another name")
    templates: dict[str, TaskTemplate] = {}
    for template in [t.template for t in found.tasks] + [t for s in specs.values() for t in _templates(s)]:
        if templates.setdefault(template.name, template) != template:
            raise CompileError(f"two different tasks are both named {template.name!r} in {found.root}; "
                               "give one another name (task(name=...))")
    packed = _code(found.root, templates.values())
    code = None
    if packed is not None:
        if ship is None:
            raise InputError("this registration has code to ship and nowhere to store it")
        # Task files are stored relative to the archive's top, so that the same code registered
        # from another checkout (a laptop, CI) is the same content, not a conflict.
        templates = {name: _relative(t, packed.root) for name, t in templates.items()}
        specs = {name: _relative_spec(s, packed.root) for name, s in specs.items()}
        code = CodeRef(digest=packed.digest, uri=ship(packed), root=".")
    plans: dict[str, LaunchPlanSpec] = {name: LaunchPlanSpec(name=name, workflow=name, workflow_version=version)
                                        for name in specs}
    named: dict[str, LaunchPlan] = {}
    for plan in found.launch_plans:
        assert plan.name is not None  # collect() named it
        if named.setdefault(plan.name, plan) is not plan:
            raise CompileError(f"two launch plans are both named {plan.name!r}; give one another name")
        plans[plan.name] = plan.spec(version, blobs)
    entities = [NewEntity("task", name, version, t.model_dump(mode="json")) for name, t in sorted(templates.items())]
    entities += [NewEntity("workflow", name, version, RegisteredWorkflow(spec=s.model_dump(mode="json"), code=code)
                           .model_dump(mode="json")) for name, s in sorted(specs.items())]
    entities += [NewEntity("launch_plan", name, version, p.model_dump(mode="json")) for name, p in sorted(plans.items())]
    return Registration(version, entities, packed)


def _relative(template: TaskTemplate, root: Path) -> TaskTemplate:
    ref = template.ref
    if ref is None or not ref.file or not Path(ref.file).is_relative_to(root):
        return template
    return template.model_copy(update={"ref": ref.model_copy(update={"file": str(Path(ref.file).relative_to(root))})})


def _relative_spec(spec: WorkflowSpec, root: Path) -> WorkflowSpec:
    """``spec`` with its tasks' files relative to ``root``, and its content hash made again."""
    moved = spec.model_copy(update={
        "tasks": {key: _relative(t, root) for key, t in spec.tasks.items()},
        "subworkflows": {key: _relative_spec(sub, root) for key, sub in spec.subworkflows.items()}})
    return moved.with_version() if spec.version else moved


def check_version(version: str) -> None:
    """Refuse a version no command line or URL could carry."""
    if not version or len(version) > 128 or any(c.isspace() or c == "/" for c in version):
        raise InputError(f"version {version!r}: give a non-empty version of at most 128 characters without "
                         "spaces or slashes (a release number, a commit hash)")


def _templates(spec: WorkflowSpec) -> list[TaskTemplate]:
    return [*spec.tasks.values(), *(t for sub in spec.subworkflows.values() for t in _templates(sub))]


def _code(root: Path, templates: Any) -> Archive | None:
    """The archive of ``root`` when a Python task imports from it; an error for a task whose
    code lies in another tree, which its pods could not import."""
    ship = False
    for template in templates:
        if template.ref is None:
            continue
        own = source_root(template.ref.module, template.ref.file)
        if own is None:
            continue  # installed in the environment: the image has it
        if own != root:
            raise CompileError(f"task {template.name!r} is imported from {own}, outside {root} which is being "
                               "registered; register the folder holding both, or install that code in the image")
        ship = True
    return archive(root) if ship else None


# -- storing -----------------------------------------------------------------------------------


def code_uri(blobs: BlobStore, digest: str) -> str:
    """Where the code archive with SHA-256 ``digest`` is kept: ``code/<digest>.tar.gz``."""
    return blobs.uri("code", f"{digest}.tar.gz")


def store_code(blobs: BlobStore, data: bytes, digest: str) -> tuple[str, bool]:
    """Store a code archive under its digest unless it is there; (its URI, whether it was written)."""
    uri = code_uri(blobs, digest)
    if blobs.exists(uri):
        return uri, False
    blobs.write_bytes(uri, data)
    return uri, True


def checked_entities(store: EntityStore, blobs: BlobStore, project: str, domain: str, version: str,
                     items: list[tuple[str, str, dict[str, Any]]]) -> list[NewEntity]:
    """A registration sent to the server, checked and in canonical form: each body valid for its
    kind and named as its entity, each workflow's code archive already uploaded to ``blobs``, each
    launch plan's workflow version in the set or registered."""
    check_version(version)
    out: list[NewEntity] = []
    keys: set[tuple[str, str]] = set()
    workflows = {name for kind, name, _ in items if kind == "workflow"}
    for kind, name, body in items:
        if (kind, name) in keys:
            raise InputError(f"{kind} {name!r} is in this registration twice")
        keys.add((kind, name))
        try:
            model, own = _parse(kind, body)
        except ValueError as exc:  # pydantic's ValidationError is one
            raise InputError(f"{kind} {name!r}: not a valid {kind} body: {exc}") from None
        if own != name:
            raise InputError(f"{kind} {name!r}: its body names it {own!r}")
        if isinstance(model, RegisteredWorkflow) and model.code is not None:
            expected = code_uri(blobs, model.code.digest)
            if model.code.uri != expected or not blobs.exists(expected):
                raise InputError(f"workflow {name!r}: its code archive {model.code.digest} is not on this server; "
                                 f"upload it first (PUT .../code/{model.code.digest})")
        if isinstance(model, LaunchPlanSpec) and model.schedule is not None:
            check_schedule(model.schedule)
        problem = label_problem(model.labels) if isinstance(model, LaunchPlanSpec) else None
        if problem:
            raise InputError(f"launch plan {name!r}: {problem}")
        if isinstance(model, LaunchPlanSpec) and not (
                (model.workflow_version == version and model.workflow in workflows)
                or store.get(project, domain, "workflow", model.workflow, model.workflow_version) is not None):
            raise InputError(f"launch plan {name!r}: workflow {model.workflow!r} version "
                             f"{model.workflow_version!r} is neither in this registration nor registered in "
                             f"{project}/{domain}")
        out.append(NewEntity(kind, name, version, model.model_dump(mode="json")))
    return out


def _parse(kind: str, body: dict[str, Any]) -> tuple[Any, str]:
    if kind == "task":
        template = TaskTemplate.model_validate(body)
        return template, template.name
    if kind == "workflow":
        registered = RegisteredWorkflow.model_validate(body)
        spec = WorkflowSpec.model_validate(registered.spec)
        return registered.model_copy(update={"spec": spec.model_dump(mode="json")}), spec.name
    plan = LaunchPlanSpec.model_validate(body)
    return plan, plan.name


def activate_plans(store: EntityStore, project: str, domain: str, entities: list[NewEntity]) -> list[str]:
    """Make the launch plans among ``entities`` the active versions of their names; their names."""
    plans = [e for e in entities if e.kind == "launch_plan"]
    for plan in plans:
        store.activate(project, domain, plan.name, plan.version)
    return [plan.name for plan in plans]


def _conflicting(store: EntityStore, project: str, domain: str, items: list[NewEntity]) -> bool:
    """Whether any of ``items`` is registered already with other content."""
    for item in items:
        found = store.get(project, domain, item.kind, item.name, item.version)
        if found is not None and found.digest != digest(item.body):
            return True
    return False


def register_local(store: EntityStore, blobs: BlobStore, path: str | Path, project: str, domain: str,
                   version: str, activate: bool = False) -> tuple[list[RegisterResult], list[str]]:
    """Register everything ``path`` defines into ``store`` under ``version``: all of it, or
    nothing when any entity is already registered with other content (EntityConflictError; its
    code archive is then not stored either). With ``activate``, its launch plans become the
    active versions. What registering each entity did, and the launch plans activated."""
    registration = build_registration(collect(path), version, ship=lambda packed: code_uri(blobs, packed.digest),
                                      blobs=blobs)
    # The archive is stored only once nothing conflicts, so a refused registration leaves no code
    # behind; a conflicting set is refused by register_all, which names every conflict.
    if registration.archive is not None and not _conflicting(store, project, domain, registration.entities):
        store_code(blobs, registration.archive.data, registration.archive.digest)
    results = store.register_all(project, domain, registration.entities)
    return results, activate_plans(store, project, domain, registration.entities) if activate else []
