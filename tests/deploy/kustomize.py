"""Render a kustomization offline: a small subset of kustomize, in Python.

`kubectl kustomize DIR` is the reference renderer, but kubectl and kustomize are
not installable from the registries a fresh machine with only Python reaches
(PyPI has no kustomize build; Debian's kubernetes-client is 1.20, whose embedded
kustomize predates `labels` and `patches`). So the tests render with this module,
and `test_manifests.py` compares its output with `kubectl kustomize` wherever
kubectl is on the PATH.

Supported, and the manifests under `deploy/` keep to it:

- `resources`: YAML files (one or more documents) and directories holding a
  `kustomization.yaml`, rendered recursively;
- `patches`: inline JSON 6902 patches (`add`, `replace`, `remove`) with a
  `target` of `kind` and `name`; a target matching nothing is an error here
  (kustomize ignores it), so a renamed object cannot leave a patch behind;
- `namespace`: set on every namespaced object; a Namespace object is renamed to
  it, as kustomize does;
- `labels` with `includeSelectors: false`: added to every object's labels and,
  with `includeTemplates: true`, to pod templates and volume claim templates;
- `images`: `newName` / `newTag` for containers and init containers;
- `replicas`: `name` and `count` of a Deployment or StatefulSet.

Anything else in a kustomization (generators, name prefixes, strategic-merge
patches, components, ...) raises `UnsupportedKustomizeError`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]

SUPPORTED_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "patches",
        "namespace",
        "labels",
        "images",
        "replicas",
    }
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
    }
)
POD_TEMPLATE_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
)
SCALABLE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})


class UnsupportedKustomizeError(ValueError):
    """A kustomization uses a feature this renderer does not implement."""


class KustomizeError(ValueError):
    """A kustomization is wrong: a missing file, a patch target matching nothing."""


def render(directory: Path) -> list[Object]:
    """The objects `kubectl kustomize directory` would print (in another order)."""
    kustomization = _load_kustomization(directory)
    objects: list[Object] = []
    for entry in kustomization.get("resources", []):
        objects.extend(_load_resource(directory / entry))

    for patch in kustomization.get("patches", []):
        _apply_patch(objects, patch)
    if namespace := kustomization.get("namespace"):
        _set_namespace(objects, namespace)
    for labels in kustomization.get("labels", []):
        _add_labels(objects, labels)
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    for replicas in kustomization.get("replicas", []):
        _set_replicas(objects, replicas)

    _check_unique(objects)
    return objects


def _load_kustomization(directory: Path) -> dict[str, Any]:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"no kustomization.yaml in {str(directory)!r}")
    kustomization = yaml.safe_load(path.read_text()) or {}
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise UnsupportedKustomizeError(
            f"{str(path)!r} uses {sorted(unsupported)!r}, outside the supported subset"
        )
    return kustomization


def _load_resource(path: Path) -> list[Object]:
    if path.is_dir():
        return render(path)
    if not path.is_file():
        raise KustomizeError(f"resource {str(path)!r} does not exist")
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# -- patches -------------------------------------------------------------------
def _apply_patch(objects: list[Object], patch: dict[str, Any]) -> None:
    if set(patch) != {"target", "patch"} or set(patch["target"]) - {"kind", "name"}:
        raise UnsupportedKustomizeError(
            f"only inline patches targeted by kind and name are supported: {patch!r}"
        )
    operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list):
        raise UnsupportedKustomizeError(f"not a JSON 6902 patch: {patch['patch']!r}")
    target = patch["target"]
    matched = [obj for obj in objects if _matches(obj, target)]
    if not matched:
        raise KustomizeError(f"patch target {target!r} matches no object")
    for obj in matched:
        for operation in operations:
            _apply_operation(obj, operation)


def _matches(obj: Object, target: dict[str, str]) -> bool:
    return obj.get("kind") == target.get("kind", obj.get("kind")) and obj["metadata"][
        "name"
    ] == target.get("name", obj["metadata"]["name"])


def _apply_operation(obj: Object, operation: dict[str, Any]) -> None:
    op, tokens = operation["op"], _pointer(operation["path"])
    parent = obj
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last = tokens[-1]
    if op in ("add", "replace"):
        value = copy.deepcopy(operation["value"])
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op == "add":
                parent.insert(index, value)
            else:
                parent[index] = value
        else:
            if op == "replace" and last not in parent:
                raise KustomizeError(f"cannot replace missing {operation['path']!r}")
            parent[last] = value
    elif op == "remove":
        if isinstance(parent, list):
            del parent[int(last)]
        elif last in parent:
            del parent[last]
        else:
            raise KustomizeError(f"cannot remove missing {operation['path']!r}")
    else:
        raise UnsupportedKustomizeError(f"JSON patch operation {op!r} is not supported")


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"not a JSON pointer: {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


# -- transformers --------------------------------------------------------------
def _set_namespace(objects: list[Object], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] == "Namespace":
            obj["metadata"]["name"] = namespace
        elif obj["kind"] not in CLUSTER_SCOPED_KINDS:
            obj["metadata"]["namespace"] = namespace


def _add_labels(objects: list[Object], labels: dict[str, Any]) -> None:
    if labels.get("includeSelectors", False) or set(labels) - {
        "pairs",
        "includeSelectors",
        "includeTemplates",
    }:
        raise UnsupportedKustomizeError(f"labels entry outside the subset: {labels!r}")
    pairs = labels["pairs"]
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        if labels.get("includeTemplates") and obj["kind"] in POD_TEMPLATE_KINDS:
            template = obj["spec"]["template"]
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
            for claim in obj["spec"].get("volumeClaimTemplates", []):
                claim.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _set_image(objects: list[Object], image: dict[str, str]) -> None:
    if set(image) - {"name", "newName", "newTag"}:
        raise UnsupportedKustomizeError(f"images entry outside the subset: {image!r}")
    for container in (c for obj in objects for c in _containers(obj)):
        name, tag = _split_image(container["image"])
        if name != image["name"]:
            continue
        name = image.get("newName", name)
        tag = image.get("newTag", tag)
        container["image"] = f"{name}:{tag}" if tag else name


def _split_image(reference: str) -> tuple[str, str | None]:
    if "@" in reference:
        raise UnsupportedKustomizeError(
            f"image digests are not supported: {reference!r}"
        )
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:  # no tag, or the colon was a registry port
        return reference, None
    return name, tag


def _containers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict) and "image" in c)
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _set_replicas(objects: list[Object], replicas: dict[str, Any]) -> None:
    matched = [
        obj
        for obj in objects
        if obj["kind"] in SCALABLE_KINDS and obj["metadata"]["name"] == replicas["name"]
    ]
    if not matched:
        raise KustomizeError(f"replicas entry {replicas!r} matches no workload")
    for obj in matched:
        obj["spec"]["replicas"] = replicas["count"]


def _check_unique(objects: list[Object]) -> None:
    seen: set[tuple[str, str | None, str]] = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"two objects are {key!r}")
        seen.add(key)
