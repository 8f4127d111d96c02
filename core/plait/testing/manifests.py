"""Validate the Kubernetes objects plait builds against the real schemas, in tests.

A manifest that a real API server would refuse, or silently change, must fail a test here
rather than on a cluster. :func:`validate_manifest` checks one object:

- **Built-in kinds** (``v1`` Pods and Secrets, ``apps/v1``, ``batch/v1``, RBAC, ...) against the
  JSON schemas ``kubernetes-validate`` ships for :data:`KUBERNETES_VERSION`, in strict mode: a
  field the schema does not declare is an error (the Python client sends it, and the server
  drops it or refuses it, depending on its field validation). A quantity (``"4Gi"``,
  ``"500m"``) must also match the API server's quantity syntax, which those schemas omit.
- **Custom kinds** (``SparkApplication``, ``PyTorchJob``, ...) against the ``openAPIV3Schema`` of
  the CRD that serves their group, version and kind, read from the CRD files given (by default
  the ones in this repository's ``tests/data/crds``). The schema is translated to JSON Schema
  the way the API server reads it (see :func:`structural_to_json_schema`) and checked with
  Draft 4, the draft OpenAPI 3.0 schemas follow (boolean ``exclusiveMinimum``, one schema in
  ``items``). A field the CRD does not declare is an error: the API server prunes unknown fields
  of a structural schema, so plait would believe it set something the cluster never sees.
  ``metadata`` is checked as the API server checks it, against ``ObjectMeta``.
- Every kind: ``metadata.name`` (or ``generateName``) is present and a DNS-1123 subdomain,
  and label keys and values and annotation keys have the syntax the API server requires.

A kind no schema describes is an error, never a silent pass. Every violation is reported in
one :class:`ManifestError`, each with its path in the object (``spec.containers[0].image``) and
what the schema expected.

Not checked, because only a running API server or its handwritten Go validation knows them:
CEL rules (``x-kubernetes-validations``), built-in kinds' cross-field rules (unique container
names, a volume mount naming a declared volume), admission webhooks and quotas, and string
formats (``int32``, ``date-time``). The schemas are loaded once per process and cached.

``kubernetes-validate``, ``jsonschema`` and ``PyYAML`` are imported only when a manifest is
checked, so ``import plait.testing`` does not need them; they come with plait's ``test`` extra.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KUBERNETES_VERSION = "1.30"
"""The Kubernetes minor version built-in kinds are checked against.

The oldest one plait supports: API fields are only ever added, so an object valid for 1.30
is valid on every later cluster, while a field newer than 1.30 is refused here rather than
dropped by an older server.
"""

DEFAULT_CRDS: tuple[Path, ...] = tuple(
    path for path in (Path(__file__).resolve().parents[3] / "tests" / "data" / "crds",) if path.is_dir()
)
"""The CRD folder this repository carries (``tests/data/crds``), when plait runs from a
checkout; empty elsewhere, where callers pass ``crds=`` themselves."""

# The API server's resource.Quantity syntax (the pattern controller-gen writes into CRDs).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


@dataclass(frozen=True)
class Violation:
    """One way a manifest breaks its schema."""

    path: str
    """Where in the object, as ``spec.containers[0].resources.limits["nvidia.com/gpu"]``;
    ``<root>`` for the object itself."""
    message: str
    """What the schema expected there."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ManifestError(AssertionError):
    """A manifest a real API server would refuse or silently change.

    An :class:`AssertionError` because it is a test's verdict on what plait (or a plugin)
    built, not an error a user of plait can fix: pytest reports it as a failed check, with the
    message below, and ``plait.testing`` is never imported by the code that runs on a cluster.
    """

    def __init__(self, kind: str, name: str, api_version: str, against: str,
                 violations: list[Violation]) -> None:
        self.kind = kind
        self.name = name
        self.api_version = api_version
        self.violations = violations
        lines = "\n".join(f"  {violation}" for violation in violations)
        super().__init__(
            f"{kind} {name!r} ({api_version}) does not validate against {against}:\n{lines}"
        )


@dataclass(frozen=True, eq=False)
class CustomResource:
    """One version of a kind that a CRD defines (``served`` says whether the server serves it)."""

    group: str
    version: str
    kind: str
    served: bool
    schema: Mapping[str, Any]
    """The version's ``openAPIV3Schema``, as written in the CRD."""
    source: Path
    """The CRD file it was read from."""


def validate_manifest(
    manifest: Mapping[str, Any],
    *,
    crds: Iterable[Path] = DEFAULT_CRDS,
    kubernetes_version: str = KUBERNETES_VERSION,
) -> None:
    """Raise :class:`ManifestError` unless ``manifest`` is valid for its kind.

    ``crds`` are CRD files or folders of them (``*.yaml``, ``*.yml``, ``*.json``); a custom
    kind is checked against the one that serves its ``apiVersion`` and ``kind``.
    """
    document, kind, name, api_version = _identify(manifest)
    custom = _find_custom(api_version, kind, tuple(crds))
    if isinstance(custom, CustomResource):
        against = f"the {custom.kind} CRD in {custom.source.name} (unknown fields are pruned)"
        violations = _custom_violations(document, custom, kubernetes_version)
    else:
        against = f"Kubernetes {kubernetes_version} (strict: no unknown fields)"
        core = _core_validator(kind, api_version, kubernetes_version)
        if core is None:
            raise ManifestError(kind, name, api_version, "any known schema", [Violation(
                "<root>",
                f"no schema for kind {kind!r} in {api_version!r}: not a built-in kind of "
                f"Kubernetes {kubernetes_version}, and {custom}",
            )])
        violations = _violations(core, document)
    violations += _metadata_violations(document)
    if violations:
        raise ManifestError(kind, name, api_version, against, violations)


def validate_manifests(
    manifests: Iterable[Mapping[str, Any]],
    *,
    crds: Iterable[Path] = DEFAULT_CRDS,
    kubernetes_version: str = KUBERNETES_VERSION,
) -> None:
    """Check each manifest; raise one :class:`AssertionError` listing every invalid one."""
    crds = tuple(crds)
    failures = []
    for manifest in manifests:
        try:
            validate_manifest(manifest, crds=crds, kubernetes_version=kubernetes_version)
        except ManifestError as error:
            failures.append(str(error))
    if failures:
        raise AssertionError("\n".join(failures))


def load_crds(crds: Iterable[Path]) -> list[CustomResource]:
    """Every kind and version the CRD files (or folders of them) define."""
    found: list[CustomResource] = []
    for file in _crd_files(crds):
        stat = file.stat()
        found.extend(_load_crd_file(str(file), stat.st_mtime_ns, stat.st_size))
    return found


def structural_to_json_schema(node: Mapping[str, Any], *, pruning: bool = True) -> dict[str, Any]:
    """Translate a CRD's structural OpenAPI v3 schema to JSON Schema (Draft 4).

    What the API server does with the Kubernetes extensions, as JSON Schema: an object whose
    schema declares no ``additionalProperties`` and no ``x-kubernetes-preserve-unknown-fields``
    accepts only its declared ``properties`` (the server would prune the rest);
    ``x-kubernetes-int-or-string`` accepts an integer or a string; ``nullable`` accepts null;
    a required field with a ``default`` may be left out (the server fills it in before it
    validates); ``x-kubernetes-list-type: set`` and ``map`` refuse duplicate items or keys.
    Inside ``anyOf``/``allOf``/``oneOf``/``not`` nothing is pruned (``pruning=False``), as on
    the server, where only the structural part of a schema decides what is kept.
    """
    out: dict[str, Any] = {}
    properties = node.get("properties", {})
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: structural_to_json_schema(child, pruning=pruning)
                        for name, child in value.items()}
        elif key == "items":
            out[key] = structural_to_json_schema(value, pruning=pruning)
        elif key == "additionalProperties":
            out[key] = value if isinstance(value, bool) else structural_to_json_schema(value, pruning=pruning)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [structural_to_json_schema(branch, pruning=False) for branch in value]
        elif key == "not":
            out[key] = structural_to_json_schema(value, pruning=False)
        elif key == "required":
            out[key] = [name for name in value if "default" not in properties.get(name, {})]
        elif key in _VALUE_KEYWORDS:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        out["uniqueItems"] = True
    elif list_type == "map" and node.get("x-kubernetes-list-map-keys"):
        # A key left out counts as its default (a port's protocol is TCP), as after defaulting.
        item_properties = node.get("items", {}).get("properties", {})
        out[_LIST_MAP_KEYS] = {key: item_properties.get(key, {}).get("default")
                               for key in node["x-kubernetes-list-map-keys"]}
    declares_object = node.get("type") == "object" or "properties" in node
    if (pruning and declares_object and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if node.get("nullable"):
        return {"anyOf": [{"type": "null"}, out]}
    return out


_VALUE_KEYWORDS = frozenset({
    "type", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "multipleOf",
})
_LIST_MAP_KEYS = "x-plait-list-map-keys"


# --- identifying the object -------------------------------------------------------------------


def _identify(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], str, str, str]:
    """The manifest as the JSON the client sends, its kind, name and apiVersion."""
    kind = manifest.get("kind") if isinstance(manifest, Mapping) else None
    api_version = manifest.get("apiVersion") if isinstance(manifest, Mapping) else None
    metadata = manifest.get("metadata") if isinstance(manifest, Mapping) else None
    name = "<unnamed>"
    if isinstance(metadata, Mapping):
        name = str(metadata.get("name") or metadata.get("generateName") or name)
    if not isinstance(kind, str) or not isinstance(api_version, str) or not kind or not api_version:
        raise ManifestError(str(kind), name, str(api_version), "any schema", [Violation(
            "<root>", "apiVersion and kind must both be non-empty strings")])
    try:
        document = json.loads(json.dumps(manifest))
    except (TypeError, ValueError) as error:
        raise ManifestError(kind, name, api_version, "JSON", [Violation(
            "<root>", f"not JSON-serializable: {error}")])
    return document, kind, name, api_version


def _metadata_violations(document: Mapping[str, Any]) -> list[Violation]:
    """What the API server checks of every object's metadata beyond its schema."""
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping):
        return [Violation("metadata", "required: every object needs metadata with a name")]
    found = []
    name = metadata.get("name")
    if name is None and not metadata.get("generateName"):
        found.append(Violation("metadata.name", "required (or metadata.generateName)"))
    elif isinstance(name, str) and not _is_dns_subdomain(name):
        found.append(Violation("metadata.name", f"{name!r} is not a DNS-1123 subdomain "
                               "(lower-case letters, digits, '-' and '.', at most 253)"))
    for field, check_values in (("labels", True), ("annotations", False)):
        entries = metadata.get(field)
        if not isinstance(entries, Mapping):
            continue
        for key, value in entries.items():
            where = f"metadata.{field}{_step(key)}"
            if not _is_qualified_name(key):
                found.append(Violation(where, f"key {key!r} is not a qualified name "
                                       "([prefix/]name, name at most 63 of [A-Za-z0-9-_.])"))
            if check_values and isinstance(value, str) and (
                    len(value) > 63 or not _LABEL_VALUE.match(value)):
                found.append(Violation(where, f"label value {value!r} is not valid (at most 63 "
                                       "of [A-Za-z0-9-_.], starting and ending alphanumeric)"))
    return found


def _is_dns_subdomain(text: str) -> bool:
    return len(text) <= 253 and bool(_DNS_SUBDOMAIN.match(text))


def _is_qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or not _is_dns_subdomain(prefix)):
        return False
    return len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


# --- built-in kinds: kubernetes-validate's schemas ----------------------------------------


def _schema_folder(kubernetes_version: str) -> Any:
    kubernetes_validate = _require("kubernetes_validate", "kubernetes-validate")
    import importlib.resources

    folder = importlib.resources.files(kubernetes_validate) / "kubernetes-json-schema"
    strict = folder / f"v{kubernetes_version.removeprefix('v')}.0-local-strict"
    if not strict.is_dir():
        raise LookupError(
            f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes "
            f"{kubernetes_version}; it has {', '.join(kubernetes_validate.all_versions())}"
        )
    return strict


@functools.cache
def _core_registry(kubernetes_version: str) -> Any:
    """The shared definitions, with Quantity given the API server's syntax."""
    _require("jsonschema", "jsonschema")
    from referencing import Registry, Resource

    definitions = json.loads((_schema_folder(kubernetes_version) / "_definitions.json").read_text())
    definitions["$defs"]["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"anyOf": [
        {"type": "string", "pattern": QUANTITY_PATTERN}, {"type": "number"}, {"type": "null"},
    ]}
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def _core_validator(kind: str, api_version: str, kubernetes_version: str) -> Any:
    """A strict validator for a built-in kind, or None when Kubernetes has no such kind."""
    jsonschema = _require("jsonschema", "jsonschema")
    from referencing import Resource

    # kubernetes-validate's file names: apps/v1 Deployment -> deployment-apps-v1.json,
    # rbac.authorization.k8s.io/v1 Role -> role-rbac-v1.json, v1 Pod -> pod-v1.json.
    stem = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    file = _schema_folder(kubernetes_version) / f"{kind.lower()}-{stem}.json"
    if not file.is_file():
        return None
    schema = json.loads(file.read_text())
    # The files are per lower-cased kind; the schema's own enum pins the exact spelling.
    registry = Resource.from_contents(schema) @ _core_registry(kubernetes_version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def _object_meta_validator(kubernetes_version: str) -> Any:
    jsonschema = _require("jsonschema", "jsonschema")
    schema = {"$ref": f"{_DEFINITIONS_ID}#/$defs/{_OBJECT_META}"}
    return jsonschema.Draft202012Validator(schema, registry=_core_registry(kubernetes_version))


# --- custom kinds: the CRDs -------------------------------------------------------------------


def _crd_files(crds: Iterable[Path]) -> list[Path]:
    files = []
    for entry in crds:
        entry = Path(entry)
        if entry.is_dir():
            files.extend(sorted(p for p in entry.iterdir() if p.suffix in (".yaml", ".yml", ".json")))
        elif entry.is_file():
            files.append(entry)
        else:
            raise FileNotFoundError(f"no CRD file or folder at {entry}")
    return files


@functools.cache
def _load_crd_file(path: str, mtime_ns: int, size: int) -> tuple[CustomResource, ...]:
    yaml = _require("yaml", "PyYAML")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found = []
    with open(path) as stream:
        for document in yaml.load_all(stream, Loader=loader):
            if not isinstance(document, dict) or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                found.append(CustomResource(
                    group=spec["group"], version=version["name"], kind=spec["names"]["kind"],
                    served=bool(version.get("served", True)),
                    schema=version["schema"]["openAPIV3Schema"], source=Path(path),
                ))
    return tuple(found)


def _find_custom(api_version: str, kind: str, crds: tuple[Path, ...]) -> CustomResource | str:
    """The CRD version serving this kind, or why none does (for the error message)."""
    group, _, version = api_version.rpartition("/")
    known = load_crds(crds) if crds else []
    same_kind = [c for c in known if c.group == group and c.kind == kind]
    for custom in same_kind:
        if custom.version == version and custom.served:
            return custom
    if same_kind:
        served = ", ".join(f"{c.group}/{c.version}" for c in same_kind if c.served)
        return f"the {kind} CRD serves only {served or 'no version'}"
    if not crds:
        return "no CRDs were given (pass crds=[folder or files])"
    kinds = ", ".join(sorted({f"{c.kind} ({c.group}/{c.version})" for c in known})) or "none"
    return f"no CRD given defines it (they define: {kinds})"


@functools.cache
def _custom_validator(custom: CustomResource) -> Any:
    jsonschema = _require("jsonschema", "jsonschema")
    schema = structural_to_json_schema(custom.schema)
    # The API server checks the root's apiVersion, kind and metadata itself (metadata below,
    # against ObjectMeta), whatever the CRD says of them.
    properties = schema.setdefault("properties", {})
    for field in ("apiVersion", "kind", "metadata"):
        properties[field] = {}

    def unique_map_keys(validator: Any, keys: dict[str, Any], instance: Any, _: Any) -> Iterator[Any]:
        if not isinstance(instance, list):
            return
        first: dict[str, int] = {}
        for index, item in enumerate(instance):
            if not isinstance(item, dict):
                continue
            values = {k: item.get(k, default) for k, default in keys.items()}
            key = json.dumps(values, sort_keys=True)
            if key in first:
                yield jsonschema.ValidationError(
                    f"duplicate entry: {values} is also item [{first[key]}] "
                    f"(x-kubernetes-list-map-keys {list(keys)} must be unique)",
                    path=[index],
                )
            first.setdefault(key, index)

    validator_class = jsonschema.validators.extend(
        jsonschema.Draft4Validator, {_LIST_MAP_KEYS: unique_map_keys})
    return validator_class(schema)


def _custom_violations(document: dict[str, Any], custom: CustomResource,
                       kubernetes_version: str) -> list[Violation]:
    found = _violations(_custom_validator(custom), document)
    if document.get("kind") != custom.kind:
        found.append(Violation("kind", f"must be {custom.kind!r}"))
    if isinstance(document.get("metadata"), dict):
        meta = _violations(_object_meta_validator(kubernetes_version), document["metadata"])
        found += [Violation(_join("metadata", v.path), v.message) for v in meta]
    return found


# --- reporting ----------------------------------------------------------------------------------


def _violations(validator: Any, document: Any) -> list[Violation]:
    found: list[Violation] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        found.extend(_describe(error))
    return found


def _describe(error: Any) -> Iterator[Violation]:
    path = _format_path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        declared = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        allowed = ", ".join(declared[:20]) + (", ..." if len(declared) > 20 else "")
        for field in error.instance:
            if field in declared or any(re.search(p, field) for p in patterns):
                continue
            yield Violation(_join(path, _step(field)), "unknown field: the schema does not "
                            f"declare it (it declares: {allowed or 'no fields'})")
    elif error.validator == "required":
        field = re.match(r"^'(.*)' is a required property$", error.message)
        where = _join(path, _step(field.group(1))) if field else path
        yield Violation(where, "required field is missing")
    elif error.validator in ("anyOf", "oneOf") and any(
            sub.validator == "pattern" and sub.validator_value == QUANTITY_PATTERN
            for sub in error.context):
        yield Violation(path, f"{_short(error.instance)} is not a Kubernetes quantity "
                        "(a number, or a string such as 2, 500m, 4Gi, 1.5G)")
    elif error.validator in ("anyOf", "oneOf") and error.context:
        reasons = sorted({sub.message for sub in error.context})
        yield Violation(path, f"{_short(error.instance)} matches none of: {'; '.join(reasons)}")
    else:
        yield Violation(path, error.message)


def _format_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text = _join(text, _step(part))
    return text or "<root>"


def _step(part: Any) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
        return f".{part}"
    return f"[{json.dumps(part)}]"


def _join(path: str, step: str) -> str:
    if path in ("", "<root>"):
        return step.removeprefix(".")
    return f"{path}.{step}" if not step.startswith((".", "[")) else path + step


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _require(module: str, distribution: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"validating Kubernetes manifests needs {distribution}: pip install {distribution} "
            "(or plait's test extra: pip install 'plait[test]')"
        ) from error
