"""The Kubernetes manifests, checked offline: schemas, YAML style, and our rules.

Every overlay is rendered (with `kustomize.py`, cross-checked against
`kubectl kustomize` where kubectl is installed), then each object is validated
strictly against the Kubernetes JSON schemas shipped by `kubernetes-validate`, for
the oldest and the newest Kubernetes version we support. The structural tests
hold the rules deploy/README.md promises: probes, limits, non-root, a PDB and a
NetworkPolicy per service, one replica for the services that are not yet
partitioned, autoscaling and no in-cluster back-ends in production.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from services.events.settings import EventsSettings
from services.gateway.settings import GatewaySettings
from services.statistics.settings import StatisticsSettings
from services.workflow_router.settings import RouterSettings
from shared.settings import CommonSettings
from tests.deploy.kustomize import render

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "production")
# The oldest Kubernetes release still commonly offered by managed clusters, and the
# newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())

SERVICES = {
    # component: (python module, settings class)
    "gateway": ("services.gateway", GatewaySettings),
    "workflow-router": ("services.workflow_router", RouterSettings),
    "queue-dispatcher": ("services.queue_dispatcher", CommonSettings),
    "statistics": ("services.statistics", StatisticsSettings),
    "events": ("services.events", EventsSettings),
}
# Not partitioned by workspace yet (or, for statistics, real-time state fed by a
# shared consumer): exactly one replica, replaced with Recreate.
SINGLETONS = ("workflow-router", "queue-dispatcher", "statistics")
AUTOSCALED = ("gateway", "events")
SECRET_KEYS = {
    "MONGODB_URL",
    "TASKROUTER_SECRET_KEY",
    "TASKROUTER_ACCOUNT_SID",
    "TASKROUTER_AUTH_TOKEN",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(DEPLOY / "overlays" / overlay))


def objects(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [obj for obj in rendered(overlay) if obj["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> dict[str, Any]:
    matches = [obj for obj in objects(overlay, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"{overlay}: expected one {kind} {name!r}"
    return matches[0]


def deployment(overlay: str, component: str) -> dict[str, Any]:
    return named(overlay, "Deployment", f"taskrouter-{component}")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def setting_names(settings: type[CommonSettings]) -> set[str]:
    names = set()
    for field in settings.model_fields.values():
        alias = field.validation_alias
        for choice in getattr(alias, "choices", [alias]):
            if isinstance(choice, str) and choice.isupper():
                names.add(choice)
    return names


# -- schemas and style ------------------------------------------------------------
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay, version):
    errors = []
    for obj in rendered(overlay):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")

    assert errors == []


def test_all_yaml_under_deploy_passes_yamllint():
    config = YamlLintConfig(file=str(ROOT / ".yamllint"))
    files = sorted(DEPLOY.rglob("*.yaml"))
    problems = [
        f"{path.relative_to(ROOT)}:{problem.line}: {problem.message}"
        for path in files
        for problem in linter.run(path.read_text(), config, str(path))
    ]

    assert len(files) > 20
    assert problems == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("overlay", ("base", *OVERLAYS))
def test_python_renderer_matches_kubectl_kustomize(overlay):
    directory = DEPLOY / overlay if overlay == "base" else DEPLOY / "overlays" / overlay
    output = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    def key(obj: dict[str, Any]) -> tuple[str, str, str]:
        return (
            obj["kind"],
            obj["metadata"].get("namespace", ""),
            obj["metadata"]["name"],
        )

    expected = sorted((doc for doc in yaml.safe_load_all(output) if doc), key=key)
    assert sorted(render(directory), key=key) == expected


# -- every workload ---------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_a_locked_down_security_context(
    overlay,
):
    workloads = [obj for kind in WORKLOAD_KINDS for obj in objects(overlay, kind)]
    assert workloads
    for workload in workloads:
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", (
            name
        )
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) >= {"cpu", "memory"}, (name, bound)
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_has_liveness_and_readiness_probes(overlay):
    for workload in objects(overlay, "Deployment") + objects(overlay, "StatefulSet"):
        for container in pod_spec(workload)["containers"]:
            port_names = {port["name"] for port in container.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in container, (workload["metadata"]["name"], probe)
                port = _probe_port(container[probe])
                assert port is None or port in port_names, (
                    workload["metadata"]["name"],
                    port,
                )


def _probe_port(probe: dict[str, Any]) -> str | None:
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            return probe[handler]["port"]
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_namespaced_and_labelled_part_of_taskrouter(overlay):
    namespace = named(
        overlay, "Namespace", "taskrouter-dev" if overlay == "dev" else "taskrouter"
    )
    for obj in rendered(overlay):
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "taskrouter"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace["metadata"]["name"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# -- the five services --------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("component", SERVICES)
def test_each_service_runs_its_module_with_probes_on_real_endpoints(overlay, component):
    module, _ = SERVICES[component]
    spec = pod_spec(deployment(overlay, component))
    (container,) = spec["containers"]

    assert container["args"] == [module]
    assert (ROOT / module.replace(".", "/") / "__init__.py").is_file()
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/livez",
        "port": "metrics",
    }
    # The gateway too: its /healthz (all five services) would take it out of the
    # Service whenever any backend restarts.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    metrics_ports = [
        p["containerPort"] for p in container["ports"] if p["name"] == "metrics"
    ]
    common = named(overlay, "ConfigMap", "taskrouter-common")["data"]
    assert metrics_ports == [int(common["TASKROUTER_METRICS_PORT"])]
    assert common["TASKROUTER_METRICS_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("component", SERVICES)
def test_each_service_has_a_pdb_and_a_network_policy_selecting_its_pods(
    overlay, component
):
    pod_labels = deployment(overlay, component)["spec"]["template"]["metadata"][
        "labels"
    ]
    name = f"taskrouter-{component}"

    pdb = named(overlay, "PodDisruptionBudget", name)
    policy = named(overlay, "NetworkPolicy", name)

    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for other in set(SERVICES) - {component}:
        other_labels = deployment(overlay, other)["spec"]["template"]["metadata"][
            "labels"
        ]
        assert not selects(pdb["spec"]["selector"]["matchLabels"], other_labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("component", SERVICES)
def test_network_policy_lets_in_metrics_and_out_only_dns_nats_mongodb(
    overlay, component
):
    policy = named(overlay, "NetworkPolicy", f"taskrouter-{component}")["spec"]

    ingress_ports = {
        port["port"] for rule in policy["ingress"] for port in rule["ports"]
    }
    assert ingress_ports == (
        {"http", "metrics"} if component == "gateway" else {"metrics"}
    )
    for rule in policy["ingress"]:
        open_to_all = "from" not in rule
        assert open_to_all == (rule["ports"][0]["port"] == "http"), rule

    by_port = [rule for rule in policy["egress"] if "to" not in rule]
    assert {port["port"] for rule in by_port for port in rule["ports"]} == {
        53,
        4222,
        27017,
    }
    by_address = [rule for rule in policy["egress"] if "to" in rule]
    if component == "events":
        (webhooks,) = by_address
        blocks = {
            peer["ipBlock"]["cidr"]: peer["ipBlock"]["except"]
            for peer in webhooks["to"]
        }
        assert "10.0.0.0/8" in blocks["0.0.0.0/0"] and "fc00::/7" in blocks["::/0"]
    else:
        assert by_address == []


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("component", SERVICES)
def test_settings_come_from_known_config_maps_and_the_secret(overlay, component):
    _, settings = SERVICES[component]
    known = setting_names(settings)
    (container,) = pod_spec(deployment(overlay, component))["containers"]

    config_maps = [source["configMapRef"]["name"] for source in container["envFrom"]]
    assert config_maps == ["taskrouter-common", f"taskrouter-{component}"]
    for name in config_maps:
        data = named(overlay, "ConfigMap", name)["data"]
        unknown = {key for key in data if not key.startswith("PYTHON")} - known
        assert unknown == set(), (name, unknown)

    secret_refs = {
        env["name"]: env["valueFrom"]["secretKeyRef"]
        for env in container["env"]
        if "secretKeyRef" in env.get("valueFrom", {})
    }
    assert "MONGODB_URL" in secret_refs
    for env_name, ref in secret_refs.items():
        assert ref == {"name": "taskrouter-secrets", "key": env_name}
        assert env_name in SECRET_KEYS and env_name in known
    assert objects(overlay, "Secret") == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_gateway_and_events_get_the_secret_key(overlay):
    holders = {
        component
        for component in SERVICES
        for env in pod_spec(deployment(overlay, component))["containers"][0]["env"]
        if env["name"] == "TASKROUTER_SECRET_KEY"
    }

    assert holders == {"gateway", "events"}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("component", SINGLETONS)
def test_services_not_yet_partitioned_run_one_replica_replaced_by_recreate(
    overlay, component
):
    spec = deployment(overlay, component)["spec"]

    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert not any(
        hpa["spec"]["scaleTargetRef"]["name"] == f"taskrouter-{component}"
        for hpa in objects(overlay, "HorizontalPodAutoscaler")
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_service_routes_to_the_gateway_http_port(overlay):
    service = named(overlay, "Service", "taskrouter-gateway")["spec"]
    pod_labels = deployment(overlay, "gateway")["spec"]["template"]["metadata"][
        "labels"
    ]

    assert selects(service["selector"], pod_labels)
    assert service["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


# -- overlays -------------------------------------------------------------------------
def test_dev_runs_nats_with_jetstream_and_a_one_member_mongodb_replica_set():
    nats = named("dev", "StatefulSet", "nats")
    mongodb = named("dev", "StatefulSet", "mongodb")
    nats_conf = named("dev", "ConfigMap", "nats-config")["data"]["nats.conf"]
    init = named("dev", "Job", "mongodb-init-replica-set")

    assert pod_spec(nats)["containers"][0]["image"].startswith("nats:")
    assert "jetstream {" in nats_conf and "sync_interval: always" in nats_conf
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert pod_spec(mongodb)["containers"][0]["image"].startswith("mongo:")
    assert "--replSet=rs0" in pod_spec(mongodb)["containers"][0]["args"]
    assert "rs.initiate" in pod_spec(init)["containers"][0]["command"][-1]
    assert (
        named("dev", "ConfigMap", "taskrouter-common")["data"]["NATS_URL"]
        == "nats://nats:4222"
    )
    for component in SERVICES:
        assert deployment("dev", component)["spec"]["replicas"] == 1


def test_production_has_no_in_cluster_nats_or_mongodb():
    images = [
        container["image"]
        for kind in WORKLOAD_KINDS
        for workload in objects("production", kind)
        for container in pod_spec(workload)["containers"]
    ]

    assert objects("production", "StatefulSet") == []
    assert objects("production", "PersistentVolumeClaim") == []
    assert images and all(
        image.startswith("registry.example.com/taskrouter:") for image in images
    )
    common = named("production", "ConfigMap", "taskrouter-common")["data"]
    assert common["NATS_URL"] == "nats://nats.nats.svc.cluster.local:4222"
    assert common["TASKROUTER_EVENT_STREAM_REPLICAS"] == "3"


@pytest.mark.parametrize("component", AUTOSCALED)
def test_production_autoscales_gateway_and_events_from_two_replicas(component):
    name = f"taskrouter-{component}"
    hpa = named("production", "HorizontalPodAutoscaler", name)["spec"]
    spec = deployment("production", component)["spec"]
    pdb = named("production", "PodDisruptionBudget", name)["spec"]

    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] > hpa["minReplicas"]
    assert "replicas" not in spec  # owned by the autoscaler
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pdb == {"minAvailable": 1, "selector": pdb["selector"]}


def test_production_prerequisites_describe_a_three_node_jetstream_and_replica_set():
    prerequisites = DEPLOY / "overlays" / "production" / "prerequisites"
    nats = yaml.safe_load((prerequisites / "nats-values.yaml").read_text())["config"]
    mongodb = yaml.safe_load((prerequisites / "mongodb-replicaset.yaml").read_text())

    assert nats["cluster"] == {"enabled": True, "replicas": 3}
    assert nats["jetstream"]["fileStore"]["enabled"] is True
    assert nats["jetstream"]["merge"]["sync_interval"] == "always"
    assert mongodb["kind"] == "MongoDBCommunity"
    assert mongodb["spec"]["type"] == "ReplicaSet" and mongodb["spec"]["members"] == 3
    assert mongodb["spec"].get("arbiters", 0) == 0
