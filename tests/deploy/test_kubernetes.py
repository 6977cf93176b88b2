"""The Kubernetes manifests an operator applies: each overlay builds, every object is valid for
the Kubernetes API (offline schemas; KEDA's ScaledObject checked by shape), and the promises
an operator relies on hold: resources and probes, no root, secrets only by reference, only
setting names kadr reads, workers for every role, and the database connection budget at
maximum scale."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from core.infra.config import Config
from workers.worker import roles

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
OVERLAYS = sorted(path.name for path in (KUBERNETES / "overlays").iterdir() if path.is_dir())
KUBECTL = shutil.which("kubectl")

#: The values that must reach the pods only from the kadr-secrets Secret.
SECRETS = {"TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "FAL_KEY", "DATABASE_URL", "REDIS_URL"}
#: Oldest Kubernetes the manifests claim (README.md) and the newest the schemas know.
VERSIONS = ("1.29", kubernetes_validate.latest_version())
#: CRDs the offline schemas do not know; each is checked by its own test below.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}
#: PostgreSQL's default, unless an overlay documents a larger one on its ConfigMap.
MAX_CONNECTIONS = 100
MAX_CONNECTIONS_ANNOTATION = "kadr/postgres-max-connections"

Obj = dict[str, Any]

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


def build(overlay: str) -> list[Obj]:
    assert KUBECTL is not None
    built = subprocess.run(
        [KUBECTL, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    return [obj for obj in yaml.safe_load_all(built.stdout) if obj]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    return build(request.param)


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def pod_specs(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def containers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for obj, spec in pod_specs(objects):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield obj, container


def config(objects: list[Obj]) -> Obj:
    (config_map,) = of_kind(objects, "ConfigMap")
    return config_map


def test_there_are_overlays_to_check() -> None:
    assert {"small", "production"} <= set(OVERLAYS)


def test_every_object_is_valid_for_the_kubernetes_api(objects: list[Obj]) -> None:
    known = [obj for obj in objects if (obj["apiVersion"], obj["kind"]) not in CUSTOM_KINDS]
    assert {obj["kind"] for obj in known} >= {"Deployment", "Service", "Job", "ConfigMap"}
    errors = []
    for obj in known:
        for version in VERSIONS:
            try:
                # strict: an unknown field (a typo, a misplaced key) is an error, not ignored
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(
                    f"{obj['kind']} {name(obj)} on {version}: {exc.json_path}: {exc.message}"
                )
    assert not errors, "\n".join(errors)


def test_scaled_objects_scale_a_deployment_on_a_prometheus_query(objects: list[Obj]) -> None:
    deployments = {name(obj) for obj in of_kind(objects, "Deployment")}
    scaled = of_kind(objects, "ScaledObject")
    assert scaled
    for obj in scaled:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        spec = obj["spec"]
        target = spec["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment"
        assert target["name"] in deployments, f"{name(obj)} scales a missing {target['name']}"
        # At zero no pod exports the backlog the triggers read: nothing would scale it up.
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["triggers"]
        for trigger in spec["triggers"]:
            metadata = trigger["metadata"]
            assert trigger["type"] == "prometheus"
            assert metadata["serverAddress"].startswith("http")
            assert "kadr_" in metadata["query"], metadata["query"]
            assert float(metadata["threshold"]) > 0


def test_every_worker_is_scaled_and_the_api_has_an_hpa(objects: list[Obj]) -> None:
    scaled = {obj["spec"]["scaleTargetRef"]["name"] for obj in of_kind(objects, "ScaledObject")}
    hpas = {
        obj["spec"]["scaleTargetRef"]["name"] for obj in of_kind(objects, "HorizontalPodAutoscaler")
    }
    for obj in of_kind(objects, "Deployment"):
        args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
        assert name(obj) in (scaled if "worker" in args else hpas), f"{name(obj)} is not scaled"
        # The autoscaler owns the count: a replicas field would reset it on every apply.
        assert "replicas" not in obj["spec"], name(obj)


def test_every_deployment_has_a_disruption_budget(objects: list[Obj]) -> None:
    selectors = [
        obj["spec"]["selector"]["matchLabels"] for obj in of_kind(objects, "PodDisruptionBudget")
    ]
    for obj in of_kind(objects, "Deployment"):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        covering = [s for s in selectors if s.items() <= labels.items()]
        assert len(covering) == 1, f"{name(obj)}: {len(covering)} PodDisruptionBudgets"


def test_every_container_has_resources_and_long_running_ones_probes(objects: list[Obj]) -> None:
    for obj, container in containers(objects):
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(bound, {}).keys(), (
                f"{name(obj)}/{container['name']}: no {bound}"
            )
        if obj["kind"] == "Deployment":
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in container, f"{name(obj)}/{container['name']}: no {probe}"


def test_probes_and_scraping_reach_the_port_the_process_serves(objects: list[Obj]) -> None:
    metrics_port = int(config(objects)["data"]["WORKER_METRICS_PORT"])
    for obj in of_kind(objects, "Deployment"):
        template = obj["spec"]["template"]
        (container,) = template["spec"]["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            port = container[probe]["httpGet"]["port"]
            assert ports.get(port, port) in ports.values(), f"{name(obj)}: {probe} port"
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in ports.values(), name(obj)
        if "worker" in container["args"]:
            assert ports == {"metrics": metrics_port}, name(obj)
            assert container["readinessProbe"]["httpGet"]["path"] == "/metrics"
        else:
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_no_container_runs_as_root_or_writes_its_image(objects: list[Obj]) -> None:
    for obj, spec in pod_specs(objects):
        pod = spec.get("securityContext", {})
        for container in spec["containers"]:
            context = {**pod, **container.get("securityContext", {})}
            where = f"{name(obj)}/{container['name']}"
            assert context.get("runAsNonRoot") is True, where
            assert context.get("runAsUser", 0) != 0, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where


def test_secrets_come_only_from_the_secret_by_reference(objects: list[Obj]) -> None:
    assert not of_kind(objects, "Secret"), "a Secret in the manifests carries its values"
    assert not SECRETS & config(objects)["data"].keys()
    referenced = set()
    for obj, container in containers(objects):
        for source in container.get("envFrom", []):
            assert "configMapRef" in source, f"{name(obj)}: envFrom {source}"
        for var in container.get("env", []):
            if var["name"] in SECRETS:
                assert "value" not in var, f"{name(obj)}: {var['name']} written in the manifest"
                ref = var["valueFrom"]["secretKeyRef"]
                assert (ref["name"], ref["key"]) == ("kadr-secrets", var["name"]), name(obj)
                referenced.add(var["name"])
            else:
                assert "secretKeyRef" not in var.get("valueFrom", {}), name(obj)
    assert referenced == SECRETS


def test_the_example_secret_names_every_key_and_holds_only_placeholders() -> None:
    lines = (KUBERNETES / "secret.example.env").read_text().splitlines()
    pairs = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    assert pairs.keys() == SECRETS
    for key, value in pairs.items():
        assert "replace" in value, f"{key} looks like a real value"


def test_only_settings_kadr_reads_are_set(objects: list[Obj]) -> None:
    names = set(config(objects)["data"])
    for _, container in containers(objects):
        names |= {var["name"] for var in container.get("env", [])}
    unknown = names - Config.model_fields.keys()
    assert not unknown, f"not in core.infra.config.Config: {sorted(unknown)}"


def served_roles(deployment: Obj) -> list[str]:
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return [args[i + 1] for i, arg in enumerate(args) if arg == "--queue"]


def test_every_role_has_its_workers_and_each_worker_valid_roles(objects: list[Obj]) -> None:
    served: list[str] = []
    for obj in of_kind(objects, "Deployment"):
        args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
        if args[:2] != ["kadr", "worker"]:
            continue
        queues = served_roles(obj)
        # Without --queue one worker serves every role: no Deployment here is meant to.
        assert queues, f"{name(obj)} serves every queue"
        assert set(queues) <= set(roles()), f"{name(obj)}: {queues} not in {roles()}"
        served += queues
        # SIGTERM lets arq tasks finish for 20 s (job_completion_wait) before closing.
        assert obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    assert sorted(served) == sorted(roles()), "each role served by exactly one Deployment"


def max_replicas(objects: list[Obj], deployment: Obj) -> int:
    for obj in of_kind(objects, "ScaledObject"):
        if obj["spec"]["scaleTargetRef"]["name"] == name(deployment):
            return int(obj["spec"]["maxReplicaCount"])
    for obj in of_kind(objects, "HorizontalPodAutoscaler"):
        if obj["spec"]["scaleTargetRef"]["name"] == name(deployment):
            return int(obj["spec"]["maxReplicas"])
    return int(deployment["spec"].get("replicas", 1))


def surge(deployment: Obj, replicas: int) -> int:
    value = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


def test_connections_at_max_scale_fit_postgresql(objects: list[Obj]) -> None:
    """Every process holds up to DATABASE_POOL_SIZE connections (no overflow, core/infra/db.py); at
    the autoscalers' maximum, during a rolling update's surge, they must fit together."""
    config_map = config(objects)
    pool = int(config_map["data"]["DATABASE_POOL_SIZE"])
    allowed = int(
        config_map["metadata"]
        .get("annotations", {})
        .get(MAX_CONNECTIONS_ANNOTATION, MAX_CONNECTIONS)
    )
    processes = 0
    for deployment in of_kind(objects, "Deployment"):
        replicas = max_replicas(objects, deployment)
        processes += replicas + surge(deployment, replicas)
    jobs = sum(int(obj["spec"].get("parallelism", 1)) for obj in of_kind(objects, "Job"))
    needed = processes * pool + jobs  # a migration holds one connection
    assert needed <= allowed, f"{processes} processes x {pool} + {jobs} = {needed} > {allowed}"


def test_the_migrate_job_runs_the_release_the_pods_run(objects: list[Obj]) -> None:
    (job,) = of_kind(objects, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["kadr", "migrate"]
    # A Job cannot be changed in place: the next release's must replace this one.
    assert "ttlSecondsAfterFinished" in job["spec"]
    # The migrate-only apply selects it by this label (README.md); nothing else carries it.
    selected = [
        obj
        for obj in objects
        if obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "migrate"
    ]
    assert selected == [job]
    images = {c["image"] for _, c in containers(objects)}
    assert images == {container["image"]}, f"one release per overlay, not {sorted(images)}"
    assert ":" in container["image"].rsplit("/", 1)[-1], "an overlay pins the release's tag"


def test_the_ingress_routes_the_webhooks_and_the_mini_app_only(objects: list[Obj]) -> None:
    """The world reaches the two webhooks and /app/ on the api's port at PUBLIC_URL's host;
    never /metrics or the probes."""
    (ingress,) = of_kind(objects, "Ingress")
    routes = {
        (path["path"], path["pathType"]): path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert set(routes) == {
        ("/webhooks/telegram", "Exact"),
        ("/webhooks/fal", "Prefix"),
        ("/app", "Prefix"),
    }
    public = urlsplit(config(objects)["data"]["PUBLIC_URL"]).hostname
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [public]
    assert ingress["spec"]["tls"][0]["hosts"] == [public]
    (service,) = [obj for obj in of_kind(objects, "Service") if name(obj) == "kadr-api"]
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert all(s["name"] == "kadr-api" and s["port"]["name"] in ports for s in routes.values())
