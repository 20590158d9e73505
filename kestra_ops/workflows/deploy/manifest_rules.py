"""Our rules on rendered manifests: one function per concern, each returning findings."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from kestra_ops.chart import (CONFIG_KEY, CONFIGMAP, CONTAINER, DEPLOYMENT,
                               DISTRIBUTED_DEPLOYMENTS)
from kestra_ops.values.findings import Finding
from kestra_ops.yamlio import Location

MANAGEMENT_PORT = 8081
REQUIRED_SECTIONS = (("datasources", "default"), ("datasources", "postgres"),
                     ("kestra", "datasources", "postgres"))


def _find(manifests, kind: str, name: str):
    for m in manifests:
        if m.doc.get("kind") == kind and (m.doc.get("metadata") or {}).get("name") == name:
            return m
    return None


def configmap_sections(manifests, env: str, chart: Path) -> Iterable[Finding]:
    import yaml

    cm = _find(manifests, "ConfigMap", CONFIGMAP)
    if cm is None:
        yield Finding("manifest/configmap", "error", f"no ConfigMap {CONFIGMAP} rendered", "$",
                      Location(str(chart / "templates")))
        return
    raw = (cm.doc.get("data") or {}).get(CONFIG_KEY)
    try:
        config = yaml.safe_load(raw) if isinstance(raw, str) else None
    except yaml.YAMLError as err:
        config = None
        yield Finding("manifest/configmap", "error", f"application.yml is not YAML: {err}",
                      "$.data['application.yml']", cm.location(chart))
    if not isinstance(config, dict):
        yield Finding("manifest/configmap", "error",
                      f"ConfigMap {CONFIGMAP} has no application.yml mapping",
                      "$.data['application.yml']", cm.location(chart))
        return
    for path in REQUIRED_SECTIONS:
        node = config
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            yield Finding("manifest/configmap", "error",
                          f"ConfigMap {CONFIGMAP} application.yml lacks {'.'.join(path)}",
                          "$.data['application.yml']", cm.location(chart),
                          "Kestra needs all three datasource sections")


def probes(manifests, env: str, chart: Path) -> Iterable[Finding]:
    """Liveness and readiness of every Kestra server Deployment probe port 8081: kestra-standalone,
    or, in distributed mode (no kestra-standalone), each of the four component Deployments."""
    standalone = _find(manifests, "Deployment", DEPLOYMENT)
    distributed = [_find(manifests, "Deployment", name) for name in DISTRIBUTED_DEPLOYMENTS]
    if standalone is None and not any(distributed):
        yield Finding("manifest/probes", "error", f"no Deployment {DEPLOYMENT} rendered", "$",
                      Location(str(chart / "templates")))
        return
    if standalone is not None:
        yield from _probes_of(standalone, DEPLOYMENT, chart)
    for name, dep in zip(DISTRIBUTED_DEPLOYMENTS, distributed):
        if dep is None and standalone is None:
            yield Finding("manifest/probes", "error",
                          f"distributed mode rendered no Deployment {name}", "$",
                          Location(str(chart / "templates")))
        elif dep is not None:
            yield from _probes_of(dep, name, chart)


def _probes_of(dep, name: str, chart: Path) -> Iterable[Finding]:
    containers = (((dep.doc.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers") or []
    kestra = next((c for c in containers if c.get("name") == CONTAINER),
                  containers[0] if containers else {})
    ports = {p.get("name"): p.get("containerPort") for p in kestra.get("ports") or []}
    for probe in ("livenessProbe", "readinessProbe"):
        http = (kestra.get(probe) or {}).get("httpGet") or {}
        port = http.get("port")
        port = ports.get(port, port) if isinstance(port, str) else port
        if port != MANAGEMENT_PORT:
            yield Finding("manifest/probes", "error",
                          f"{name} {probe} is not an HTTP probe on port {MANAGEMENT_PORT}",
                          f"$.spec.template.spec.containers[kestra].{probe}", dep.location(chart),
                          "probe /health/liveness and /health/readiness on the management port 8081")


def image_tags(manifests, env: str, chart: Path) -> Iterable[Finding]:
    if env == "dev":
        return
    for m in manifests:
        spec = m.doc.get("spec") or {}
        pod = ((spec.get("jobTemplate") or {}).get("spec") or spec).get("template", {}).get("spec") or {}
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            image = str(c.get("image") or "")
            name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
            if "@sha256:" in image:
                continue
            if not tag or tag == "latest":
                yield Finding("manifest/image-latest", "error",
                              f"{m.name} container {c.get('name')} uses image {image!r}",
                              "$.spec.template.spec.containers", m.location(chart),
                              "pin an explicit version tag outside dev")


MANIFEST_RULES: tuple[Callable, ...] = (configmap_sections, probes, image_tags)


def manifest_findings(manifests, env: str, chart: Path) -> list[Finding]:
    return [f for rule in MANIFEST_RULES for f in rule(manifests, env, chart)]
