"""The hub: publishing a registered workflow as a bundle, and importing a bundle into a project.

A bundle (:mod:`plait.model.hub`) is made from what was registered (:func:`bundle_from_store`)
or from a module file (:func:`bundle_from_module`): the same workflow gives the same bundle
either way, byte for byte. A hub keeps bundles as ``<name>/<version>/<file>``:

- :class:`BlobHub`: a ``plait server``'s own hub, under ``hub/`` in its blob store;
- :class:`ServerHub`: another server's hub, read over HTTP without a key (hub reads are public);
- :class:`FolderHub`: a plain folder;
- :class:`GitRepoHub`: a Git repository, cloned and pulled with the ``git`` command into a cache
  folder, published to by a commit and a push.

:func:`open_hub` chooses by the address. Publishing the same content under a version again
changes nothing, other content is refused (:class:`BundleConflictError`); reading a bundle
checks every file's digest (:class:`BundleDamagedError` names the file), and
:func:`import_bundle` registers it as one registration whose version is the bundle's, so
importing it again is a no-op and another bundle under the same version is refused by the
entity store.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import json
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from plait.model.errors import EntityConflictError, EntityNotFoundError, InputError, PlaitError
from plait.model.hub import (
    CODE,
    LAUNCH_PLAN,
    MANIFEST,
    README,
    TASKS,
    WORKFLOW,
    BundleInput,
    Manifest,
    PlanTemplate,
)
from plait.model.registered import CodeRef, LaunchPlanSpec, RegisteredWorkflow
from plait.model.spec import TaskTemplate, WorkflowSpec
from plait.service.register import build_registration, collect, store_code
from plait.storage.blobs import BlobStore
from plait.storage.entities import EntityStore, NewEntity, RegisterResult


class BundleDamagedError(PlaitError):
    """A bundle's file does not match the digest its manifest records, or is missing."""


class BundleConflictError(EntityConflictError):
    """Other content is published already under a bundle's name and version."""


class BundleNotFoundError(EntityNotFoundError):
    """No bundle, or no registered workflow to make one from, by that name."""


_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                     r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_semver(version: str) -> None:
    """Refuse a version that is not a semantic version (https://semver.org)."""
    if not _SEMVER.match(version):
        raise InputError(f"version {version!r} is not a semantic version: give MAJOR.MINOR.PATCH, such as 1.0.0 "
                         "(optionally -PRERELEASE and +BUILD: 1.1.0-rc.1)")


def check_name(name: str) -> None:
    """Refuse a bundle name that could not be a folder of every hub."""
    if not _NAME.match(name) or ".." in name:
        raise InputError(f"bundle name {name!r}: use letters, digits, '.', '_' and '-' (at most 128, starting with "
                         "a letter or a digit)")


def semver_key(version: str) -> tuple[Any, ...]:
    """Sorts versions as semver orders them (a pre-release before its release)."""
    found = _SEMVER.match(version)
    if found is None:
        return (-1, version)
    major, minor, patch, pre = int(found[1]), int(found[2]), int(found[3]), found[4]
    parts = [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")] if pre else []
    return (major, minor, patch, 0 if pre else 1, parts)


# -- bundles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """A manifest and the bytes of each file it lists."""

    manifest: Manifest
    files: dict[str, bytes]

    @property
    def ref(self) -> str:
        return f"{self.manifest.name}@{self.manifest.version}"

    def manifest_bytes(self) -> bytes:
        return _json_bytes(self.manifest.model_dump(mode="json"))

    def readme(self) -> str:
        return self.files.get(README, b"").decode("utf-8", errors="replace")

    def spec(self) -> WorkflowSpec:
        return WorkflowSpec.model_validate_json(self.files[WORKFLOW])


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_bundle(name: str, version: str, spec: WorkflowSpec, plan: PlanTemplate, code: bytes | None,
                readme: str | None = None) -> Bundle:
    """The bundle of ``spec`` as ``name@version``: its tasks, the launch-plan template, the code
    archive and a README (``readme``, else the workflow's and its module's docstrings, read from
    the archive without running it, and how to run the bundle once imported)."""
    check_name(name)
    check_semver(version)
    templates = sorted({t.name: t for t in _templates(spec)}.values(), key=lambda t: t.name)
    literals = {**spec.defaults, **plan.default_inputs, **plan.fixed_inputs}
    inputs = [BundleInput(name=key, type=t.describe(), default=literals.get(key), required=key not in literals,
                          fixed=key in plan.fixed_inputs) for key, t in sorted(spec.inputs.items())]
    text = readme if readme is not None else (_readme(name, version, spec.name, templates, code)
                                              + _how_to_run(name, version, inputs))
    files = {WORKFLOW: _json_bytes(spec.model_dump(mode="json")),
             TASKS: _json_bytes([t.model_dump(mode="json") for t in templates]),
             LAUNCH_PLAN: _json_bytes(plan.model_dump(mode="json")),
             README: text.encode()}
    if code is not None:
        files[CODE] = code
    manifest = Manifest(name=name, version=version, workflow=spec.name, description=_description(text),
                        inputs=inputs, outputs={key: t.describe() for key, t in spec.outputs.items()},
                        tasks=[t.name for t in templates], images=sorted({t.image for t in templates if t.image}),
                        code=_sha256(code) if code is not None else None,
                        files={file: _sha256(data) for file, data in sorted(files.items())})
    return Bundle(manifest, files)


def _templates(spec: WorkflowSpec) -> list[TaskTemplate]:
    return [*spec.tasks.values(), *(t for sub in spec.subworkflows.values() for t in _templates(sub))]


def _description(readme: str) -> str:
    for line in readme.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line[:200]
    return ""


_RUN_A_FILE = re.compile(r"plait run (?!--remote)\S+\.py:\w+")
"""A docstring's command that runs the module file: an importer has the bundle, not the file."""


def _readme(name: str, version: str, workflow: str, templates: list[TaskTemplate], code: bytes | None) -> str:
    """``# name`` and the docstrings of the workflow's module and function, found in the code
    archive by the module its name begins with (``bigfoot.hunt``: ``hunt`` in ``bigfoot.py``);
    a ``plait run FILE.py:WORKFLOW`` in them becomes the command that runs the imported bundle."""
    module, _, function = workflow.rpartition(".")
    texts: list[str] = []
    sources = _archive_sources(code) if code is not None else {}
    modules = {module} if module else {t.ref.module for t in templates if t.ref is not None}
    for candidate in sorted(modules):
        path = candidate.replace(".", "/")
        source = sources.get(path + ".py") or sources.get(path + "/__init__.py")
        if source is None:
            continue
        tree = ast.parse(source)
        texts.append(ast.get_docstring(tree) or "")
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
                texts.append(ast.get_docstring(node) or "")
        break
    body = "\n\n".join(inspect.cleandoc(t) for t in texts if t) or (
        f"The workflow {workflow}. (Its code carries no docstring: publish with --readme FILE to describe it.)")
    body = _RUN_A_FILE.sub(f"plait run --remote {name}@{version} --project PROJECT --domain DOMAIN", body)
    return f"# {name}\n\n{body}\n"


def _how_to_run(name: str, version: str, inputs: list[BundleInput]) -> str:
    """The README's last section: the commands an importer runs, and the inputs a launch takes."""
    flags = [f"- `--{given.name.replace('_', '-')}` ({given.type}"
             + (", required)" if given.required else f", default {given.default!r})")
             for given in inputs if not given.fixed]
    return (f"\n## Run it\n\nImport the bundle into a project and domain of the server PLAIT_SERVER names (as "
            f"an editor there),\nthen launch its launch plan, `{name}`, in the same project and domain:\n\n"
            f"    plait hub import {name}@{version} --hub HUB --project PROJECT --domain DOMAIN\n"
            f"    plait run --remote {name}@{version} --project PROJECT --domain DOMAIN --wait\n\n"
            f"HUB is the hub the bundle is in: a server's URL, a folder or a Git repository."
            + ("\n\nIts inputs, as `plait run` flags:\n\n" + "\n".join(flags) if flags else "") + "\n")


def _archive_sources(code: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(code), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode("utf-8", errors="replace")  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile() and m.name.endswith(".py")}


def verify(manifest: Manifest, files: dict[str, bytes | None]) -> Bundle:
    """The bundle, once every file the manifest lists is there with its recorded digest, and the
    workflow, tasks and code agree with the manifest; BundleDamagedError naming the file if not."""
    ref = f"{manifest.name}@{manifest.version}"
    checked: dict[str, bytes] = {}
    for file, expected in manifest.files.items():
        data = files.get(file)
        if data is None:
            raise BundleDamagedError(f"bundle {ref}: {file} is missing; the bundle is incomplete, refusing it")
        actual = _sha256(data)
        if actual != expected:
            raise BundleDamagedError(f"bundle {ref}: {file} does not match its digest in {MANIFEST} (sha256 "
                                     f"{actual}, published as {expected}): it was changed after it was "
                                     "published; refusing it")
        checked[file] = data
    for needed in (WORKFLOW, TASKS, LAUNCH_PLAN):
        if needed not in checked:
            raise BundleDamagedError(f"bundle {ref}: its {MANIFEST} lists no {needed}; refusing it")
    bundle = Bundle(manifest, checked)
    if bundle.spec().name != manifest.workflow or (CODE in checked) != (manifest.code is not None) or (
            manifest.code is not None and manifest.code != manifest.files[CODE]):
        raise BundleDamagedError(f"bundle {ref}: its {MANIFEST} does not describe its {WORKFLOW} and {CODE}; "
                                 "refusing it")
    return bundle


# -- making a bundle from what was registered, or from a module file -----------------------------


def resolve_workflow(names: list[str], given: str, where: str) -> str:
    """``given``, or the one registered workflow whose dotted name ends in ``.given``."""
    if given in names:
        return given
    ending = [n for n in names if n.endswith("." + given)]
    if len(ending) == 1:
        return ending[0]
    if ending:
        more = f" (several end in it: {', '.join(ending)}; give the whole name)"
    elif names:
        more = f"; its workflows are: {', '.join(names)}"
    else:
        more = "; none is registered there: register it first (plait register PATH --version V), or publish PATH:WORKFLOW"
    raise BundleNotFoundError(f"no workflow {given!r} {where}{more}")


def bundle_from_store(entities: EntityStore, blobs: BlobStore, project: str, domain: str, workflow: str,
                      version: str, *, workflow_version: str | None = None, name: str | None = None,
                      launch_plan: str | None = None, readme: str | None = None) -> Bundle:
    """The bundle of a registered workflow (its latest version unless ``workflow_version``),
    launched as ``launch_plan`` (default: its own default plan) and named ``name`` (default: the
    last part of its dotted name)."""
    check_semver(version)
    where = f"in {project}/{domain}"
    workflow = resolve_workflow(entities.names(project, domain, "workflow"), workflow, where)
    versions = entities.list_versions(project, domain, "workflow", workflow)
    found = (entities.get(project, domain, "workflow", workflow, workflow_version) if workflow_version
             else versions[-1] if versions else None)
    if found is None:
        raise BundleNotFoundError(f"workflow {workflow!r} has no version {workflow_version!r} {where}")
    registered = RegisteredWorkflow.model_validate(found.body)
    plan_entity = (entities.active(project, domain, launch_plan) or _latest(entities, project, domain, launch_plan)
                   if launch_plan else entities.get(project, domain, "launch_plan", workflow, found.version))
    if launch_plan and plan_entity is None:
        raise BundleNotFoundError(f"no launch plan {launch_plan!r} {where}")
    plan = LaunchPlanSpec.model_validate(plan_entity.body) if plan_entity is not None else None
    if plan is not None and (plan.workflow, plan.workflow_version) != (workflow, found.version):
        raise InputError(f"launch plan {plan.name!r} launches {plan.workflow}@{plan.workflow_version}, not "
                         f"{workflow}@{found.version}; choose a launch plan of the workflow being published")
    code = None
    if registered.code is not None:
        code = blobs.read_bytes(registered.code.uri)
        if _sha256(code) != registered.code.digest:
            raise BundleDamagedError(f"workflow {workflow!r}'s code archive {registered.code.uri} does not match "
                                     f"its digest {registered.code.digest}; register the workflow again")
    return make_bundle(name or workflow.rpartition(".")[2], version, WorkflowSpec.model_validate(registered.spec),
                       _template(plan), code, readme)


def _latest(entities: EntityStore, project: str, domain: str, launch_plan: str) -> Any:
    versions = entities.list_versions(project, domain, "launch_plan", launch_plan)
    return versions[-1] if versions else None


def _template(plan: LaunchPlanSpec | None) -> PlanTemplate:
    if plan is None:
        return PlanTemplate()
    return PlanTemplate(default_inputs=plan.default_inputs, fixed_inputs=plan.fixed_inputs, labels=plan.labels,
                        max_parallelism=plan.max_parallelism)


def bundle_from_module(reference: str, version: str, *, name: str | None = None,
                       readme: str | None = None) -> Bundle:
    """The bundle of the workflow ``PATH:WORKFLOW`` names, compiled and packed as registering
    ``PATH`` would, without registering it anywhere."""
    check_semver(version)
    path, _, workflow = reference.rpartition(":")
    found = collect(path)
    registration = build_registration(found, version, ship=lambda packed: "")
    workflows = {e.name: e for e in registration.entities if e.kind == "workflow"}
    full = resolve_workflow(sorted(workflows), workflow, f"in {path}")
    plans = {e.name: e for e in registration.entities if e.kind == "launch_plan"}
    plan = LaunchPlanSpec.model_validate(plans[full].body)
    spec = WorkflowSpec.model_validate(RegisteredWorkflow.model_validate(workflows[full].body).spec)
    code = registration.archive.data if registration.archive is not None else None
    return make_bundle(name or full.rpartition(".")[2], version, spec, _template(plan), code, readme)


# -- importing -----------------------------------------------------------------------------------


def bundle_entities(bundle: Bundle, code: str | None) -> list[NewEntity]:
    """What importing ``bundle`` registers, under its version: its tasks, its workflow (its code
    archive at ``code``, a URI in the importing blob store) and a launch plan named as the bundle."""
    manifest, version = bundle.manifest, bundle.manifest.version
    ref = CodeRef(digest=manifest.code, uri=code or "", root=".") if manifest.code is not None else None
    tasks = [TaskTemplate.model_validate(t) for t in json.loads(bundle.files[TASKS])]
    template = PlanTemplate.model_validate_json(bundle.files[LAUNCH_PLAN])
    plan = LaunchPlanSpec(name=manifest.name, workflow=manifest.workflow, workflow_version=version,
                          **template.model_dump(exclude={"schema_version"}))
    workflow = RegisteredWorkflow(spec=bundle.spec().model_dump(mode="json"), code=ref)
    return [*(NewEntity("task", t.name, version, t.model_dump(mode="json")) for t in tasks),
            NewEntity("workflow", manifest.workflow, version, workflow.model_dump(mode="json")),
            NewEntity("launch_plan", manifest.name, version, plan.model_dump(mode="json"))]


def import_bundle(entities: EntityStore, blobs: BlobStore, bundle: Bundle, project: str,
                  domain: str) -> list[RegisterResult]:
    """Register ``bundle`` into (project, domain) with its code archive: all of it, or nothing
    when any entity is registered already with other content (EntityConflictError)."""
    uri = None
    if bundle.manifest.code is not None:
        uri, _ = store_code(blobs, bundle.files[CODE], bundle.manifest.code)
    try:
        return entities.register_all(project, domain, bundle_entities(bundle, uri))
    except EntityConflictError as exc:
        raise import_refused(bundle, project, domain, str(exc)) from None


def import_refused(bundle: Bundle, project: str, domain: str, diff: str) -> EntityConflictError:
    """The error of an import that found other content under the bundle's version."""
    return EntityConflictError(f"{bundle.ref} cannot be imported into {project}/{domain}: something else is "
                               f"registered there under version {bundle.manifest.version}.\n{diff}")


# -- hubs ----------------------------------------------------------------------------------------


class Hub(Protocol):
    """Where bundles are kept: ``<name>/<version>/<file>``; ``where`` names it in messages."""

    where: str

    def read_file(self, name: str, version: str, file: str) -> bytes | None:
        """The file's bytes, or None when the bundle or the file is not there."""

    def manifests(self) -> list[Manifest]:
        """Every bundle's manifest."""

    def write(self, bundle: Bundle) -> None:
        """Store ``bundle``'s files, its manifest last (a bundle is there once its manifest is)."""


def read_bundle(hub: Hub, name: str, version: str) -> Bundle:
    """``name@version`` from ``hub``, every digest checked."""
    raw = hub.read_file(name, version, MANIFEST)
    if raw is None:
        versions = sorted((m.version for m in hub.manifests() if m.name == name), key=semver_key)
        raise BundleNotFoundError(f"no bundle {name}@{version} in {hub.where}" + (
            f"; its versions: {', '.join(versions)}" if versions else "; plait hub search lists its bundles"))
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValueError as exc:
        raise BundleDamagedError(f"bundle {name}@{version}: {MANIFEST} is not a bundle manifest: {exc}") from None
    if (manifest.name, manifest.version) != (name, version):
        raise BundleDamagedError(f"bundle {name}@{version}: its {MANIFEST} names {manifest.name}@{manifest.version}")
    return verify(manifest, {file: hub.read_file(name, version, file) for file in manifest.files})


def publish(hub: Hub, bundle: Bundle) -> bool:
    """Put ``bundle`` in ``hub``; False when that very bundle is there already. Other content
    under its name and version is refused (BundleConflictError naming the files that differ)."""
    manifest = bundle.manifest
    raw = hub.read_file(manifest.name, manifest.version, MANIFEST)
    if raw is not None:
        if raw == bundle.manifest_bytes():
            return False
        try:
            there = Manifest.model_validate_json(raw).files
        except ValueError:
            there = {}
        differ = sorted(f for f in {*there, *manifest.files} if there.get(f) != manifest.files.get(f)) or [MANIFEST]
        raise BundleConflictError(f"{bundle.ref} is published in {hub.where} already, with other content "
                                  f"({', '.join(differ)} differ); a published version never changes: publish this "
                                  "as a new version")
    hub.write(bundle)
    return True


def search(manifests: list[Manifest], text: str | None = None) -> list[Manifest]:
    """The manifests whose name, workflow or description contain ``text`` (any case), by name
    and then newest version first."""
    needle = (text or "").lower()
    found = [m for m in manifests if needle in f"{m.name}\n{m.workflow}\n{m.description}".lower()]
    found.sort(key=lambda m: semver_key(m.version), reverse=True)
    return sorted(found, key=lambda m: m.name)


class FolderHub:
    """Bundles in a plain folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.where = f"the hub folder {self.root}"

    def _path(self, name: str, version: str, file: str = "") -> Path:
        check_name(name)
        check_semver(version)
        return self.root / name / version / file

    def read_file(self, name: str, version: str, file: str) -> bytes | None:
        path = self._path(name, version, file)
        return path.read_bytes() if path.is_file() else None

    def manifests(self) -> list[Manifest]:
        return [Manifest.model_validate_json(p.read_bytes()) for p in sorted(self.root.glob(f"*/*/{MANIFEST}"))]

    def write(self, bundle: Bundle) -> None:
        folder = self._path(bundle.manifest.name, bundle.manifest.version)
        folder.mkdir(parents=True, exist_ok=True)
        for file, data in [*bundle.files.items(), (MANIFEST, bundle.manifest_bytes())]:
            (folder / file).write_bytes(data)


class BlobHub:
    """A server's own hub: bundles under ``hub/`` in its blob store."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.where = "this server's hub"  # what its messages call it: its blob store's URL is not for callers

    def _uri(self, name: str, version: str, file: str) -> str:
        check_name(name)
        check_semver(version)
        return self.blobs.uri("hub", name, version, file)

    def read_file(self, name: str, version: str, file: str) -> bytes | None:
        return self.blobs.read_if_exists(self._uri(name, version, file))

    def manifests(self) -> list[Manifest]:
        uris = [u for u in self.blobs.list(self.blobs.uri("hub") + "/") if u.endswith("/" + MANIFEST)]
        return [Manifest.model_validate_json(self.blobs.read_bytes(u)) for u in uris]

    def write(self, bundle: Bundle) -> None:
        name, version = bundle.manifest.name, bundle.manifest.version
        for file, data in [*bundle.files.items(), (MANIFEST, bundle.manifest_bytes())]:
            self.blobs.write_bytes(self._uri(name, version, file), data)


class ServerHub:
    """Another ``plait server``'s hub, read through its public hub routes (no key is sent: a
    hub may be anyone's server)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.where = f"the hub of {self.url}"

    def _get(self, path: str) -> Any:
        import httpx

        try:
            answer = httpx.get(f"{self.url}/api/v1/hub{path}", timeout=60)
        except httpx.HTTPError as exc:
            raise PlaitError(f"cannot reach {self.where}: {exc}") from None
        if answer.status_code == 404:
            return None
        if answer.status_code >= 400:
            raise PlaitError(f"{self.where} answered {answer.status_code}: {answer.text[:300]}")
        return answer

    def read_file(self, name: str, version: str, file: str) -> bytes | None:
        check_name(name)
        check_semver(version)
        answer = self._get(f"/bundles/{name}/{version}/files/{file}")
        return None if answer is None else bytes(answer.content)

    def manifests(self) -> list[Manifest]:
        answer = self._get("/bundles")
        return [Manifest.model_validate(m) for m in answer.json()] if answer is not None else []

    def write(self, bundle: Bundle) -> None:
        raise InputError(f"{self.where} is a server's: publish to it with PLAIT_SERVER={self.url} "
                         "(it publishes what is registered there)")


class GitRepoHub(FolderHub):
    """Bundles in a Git repository (``git+file:///srv/hub.git``, ``git+https://...``, or a path
    ending ``.git``), worked on in a clone under ``cache``: pulled before it is read, committed
    to and pushed when a bundle is published."""

    def __init__(self, url: str, cache: Path) -> None:
        self.url = url.removeprefix("git+")
        super().__init__(cache / hashlib.sha256(self.url.encode()).hexdigest()[:16])
        self.where = f"the Git hub {url}"
        self._synced = False

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, timeout=300)
        except FileNotFoundError:
            raise PlaitError("a Git hub needs the git command: install git") from None
        if done.returncode != 0:
            raise PlaitError(f"git {' '.join(args)} failed for {self.where}: {done.stderr.strip()[-500:]}")
        return done.stdout.strip()

    def _sync(self) -> None:
        if self._synced:
            return
        if not (self.root / ".git").is_dir():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.root.mkdir()
            self._git("clone", "--quiet", self.url, ".")
        else:
            self._git("fetch", "--quiet", "origin")
        branch = self._git("symbolic-ref", "--short", "HEAD")
        if self._git("branch", "--remotes", "--list", f"origin/{branch}"):
            self._git("reset", "--quiet", "--hard", f"origin/{branch}")
        self._synced = True

    def read_file(self, name: str, version: str, file: str) -> bytes | None:
        self._sync()
        return super().read_file(name, version, file)

    def manifests(self) -> list[Manifest]:
        self._sync()
        return super().manifests()

    def write(self, bundle: Bundle) -> None:
        self._sync()
        super().write(bundle)
        self._git("add", "--", f"{bundle.manifest.name}/{bundle.manifest.version}")
        self._git("-c", "user.name=plait hub", "-c", "user.email=hub@plait.invalid", "commit", "--quiet",
                  "-m", f"publish {bundle.ref}")
        self._git("push", "--quiet", "origin", "HEAD")


def open_hub(address: str, cache: Path) -> Hub:
    """The hub at ``address``: a server's (``http(s)://``), a Git repository's (``git+...`` or a
    path ending ``.git``) or a folder's (any other path). ``cache`` holds Git clones."""
    if address.startswith(("http://", "https://")):
        return ServerHub(address)
    if address.startswith("git+") or address.rstrip("/").endswith(".git"):
        return GitRepoHub(address, cache)
    return FolderHub(address)

