"""The generated Kubernetes manifests validate against the Kubernetes API's own schemas (kubernetes-validate,
strict: an unknown or misspelt field is an error, as `kubectl apply --validate=strict` has it), and hold what
several stateless instances behind a load balancer need."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from backend_implementor.generate import render_project
from backend_implementor.spec.loader import load_spec

from .conftest import EXAMPLES, example_path

KUBERNETES = "1.31"


def manifests(name: str) -> dict[str, dict]:
    files = render_project(load_spec(example_path(name)))
    return {p.removeprefix("k8s/"): yaml.safe_load(data) for p, data in files.items() if p.startswith("k8s/")}


@pytest.mark.parametrize("name", EXAMPLES)
def test_manifests_validate_against_the_kubernetes_schemas(name):
    docs = manifests(name)
    kustomization = docs.pop("kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(docs)
    for doc in docs.values():
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_validator_refuses_what_kubernetes_would():
    deployment = manifests("library")["deployment.yaml"]
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/health"}}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "three"
    for doc in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)


@pytest.mark.parametrize("name", ["library", "notes"])
def test_deployment_runs_hardened_stateless_instances(name):
    docs = manifests(name)
    deployment, service, hpa, pdb = (
        docs[f] for f in ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml")
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"],
                     pdb["spec"]["selector"]["matchLabels"]):  # fmt: skip
        assert selector.items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["maxUnavailable"] == 1

    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    for container in [*pod["initContainers"], *pod["containers"]]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        # Secrets by reference only: no value of one is written in a manifest.
        assert container["envFrom"] == [{"secretRef": {"name": name}}]
        assert not {e["name"] for e in container["env"]} & {"DATABASE_URL", "JWT_SECRET", "ADMIN_PASSWORD"}
    (api,) = pod["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health"
    assert api["livenessProbe"]["httpGet"]["path"] == "/livez"
    env = {e["name"]: e.get("value") for e in api["env"]}
    # Migrations run once per rollout in the init container (under the advisory lock), not at each start.
    assert env["MIGRATE_ON_START"] == "false"
    assert pod["initContainers"][0]["command"] == ["node", "dist/db/cli.js", "up"]
    # The grace period covers the readiness delay plus the server's 10 s drain.
    assert float(env["SHUTDOWN_DELAY_SECONDS"]) + 10 < pod["terminationGracePeriodSeconds"]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
