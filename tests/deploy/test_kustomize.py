"""The offline kustomize subset: what it renders, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, UnsupportedKustomizeError, render

pytestmark = pytest.mark.deploy

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1.0"}]},
        },
    },
}


def _write(directory: Path, kustomization: dict, resources: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    for name, content in resources.items():
        (directory / name).write_text(yaml.safe_dump(content))
    return directory


def test_overlay_applies_patches_namespace_labels_images_and_replicas(tmp_path):
    _write(tmp_path / "base", {"resources": ["web.yaml"]}, {"web.yaml": DEPLOYMENT})
    overlay = _write(
        tmp_path / "overlay",
        {
            "resources": ["../base"],
            "namespace": "prod",
            "labels": [{"pairs": {"tier": "front"}, "includeTemplates": True}],
            "images": [
                {"name": "web", "newName": "registry.example.com/web", "newTag": "2.0"}
            ],
            "replicas": [{"name": "web", "count": 3}],
            "patches": [
                {
                    "target": {"kind": "Deployment", "name": "web"},
                    "patch": "- op: add\n  path: /spec/minReadySeconds\n  value: 5\n",
                }
            ],
        },
        {},
    )

    (web,) = render(overlay)

    assert web["metadata"] == {
        "name": "web",
        "namespace": "prod",
        "labels": {"tier": "front"},
    }
    assert web["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert web["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        "tier": "front",
    }
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/web:2.0"
    )
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["minReadySeconds"] == 5


def test_patch_whose_target_matches_nothing_is_an_error(tmp_path):
    directory = _write(
        tmp_path,
        {
            "resources": ["web.yaml"],
            "patches": [
                {
                    "target": {"kind": "Deployment", "name": "api"},
                    "patch": "- op: remove\n  path: /spec/replicas\n",
                }
            ],
        },
        {"web.yaml": DEPLOYMENT},
    )

    with pytest.raises(KustomizeError, match="matches no object"):
        render(directory)


@pytest.mark.parametrize(
    "field",
    [
        {"namePrefix": "x-"},
        {"configMapGenerator": [{"name": "c", "literals": ["A=1"]}]},
        {"commonLabels": {"a": "b"}},
        {"labels": [{"pairs": {"a": "b"}, "includeSelectors": True}]},
    ],
    ids=["namePrefix", "configMapGenerator", "commonLabels", "labels-in-selectors"],
)
def test_features_outside_the_subset_are_refused(tmp_path, field):
    directory = _write(
        tmp_path, {"resources": ["web.yaml"], **field}, {"web.yaml": DEPLOYMENT}
    )

    with pytest.raises(UnsupportedKustomizeError):
        render(directory)
