"""ConfigMap kestra-config: its application.yml carries the three datasource sections Kestra
needs (``datasources.default``, ``datasources.postgres``, ``kestra.datasources.postgres``;
Micronaut 4 is reported to fail silently without ``datasources.default``)."""

from __future__ import annotations

from typing import Any

from kestra_ops.chart import CONFIG_KEY, CONFIGMAP
from kestra_ops.checks.declare import Check
from kestra_ops.results import FAIL, PASS, Item

ORDER = 50

REQUIRED_SECTIONS = (("datasources", "default"), ("datasources", "postgres"),
                     ("kestra", "datasources", "postgres"))


def parse_application(configmap: dict | None) -> tuple[dict | None, str]:
    """(application.yml as plain data, "" ) or (None, why it cannot be read)."""
    if configmap is None:
        return None, f"configmap {CONFIGMAP} not found"
    raw = (configmap.get("data") or {}).get(CONFIG_KEY)
    if not isinstance(raw, str):
        return None, f"configmap {CONFIGMAP} has no {CONFIG_KEY}"
    from kestra_ops.errors import KestraOpsError
    from kestra_ops.yamlio import load_yaml_text, to_plain

    try:
        data = to_plain(load_yaml_text(raw, f"configmap/{CONFIGMAP}/{CONFIG_KEY}"))
    except KestraOpsError as err:
        return None, f"{CONFIG_KEY} is not valid YAML: {err}"
    if not isinstance(data, dict):
        return None, f"{CONFIG_KEY} in configmap {CONFIGMAP} is not a mapping"
    return data, ""


def get_path(data: Any, path: tuple[str, ...]) -> Any:
    """``data[a][b][c]`` accepting kebab- and camel-case keys, or None."""
    node = data
    for part in path:
        if not isinstance(node, dict):
            return None
        camel = "".join(w.capitalize() if i else w for i, w in enumerate(part.split("-")))
        node = node.get(part, node.get(camel))
    return node


def missing_sections(app: dict) -> list[str]:
    return [".".join(path) for path in REQUIRED_SECTIONS
            if not isinstance(get_path(app, path), dict)]


def check_configmap(configmap: dict | None) -> Item:
    """The ``configmap`` item."""
    app, why = parse_application(configmap)
    if app is None:
        return Item("configmap", FAIL, why)
    missing = missing_sections(app)
    details = [f"{'present' if '.'.join(p) not in missing else 'MISSING'}: {'.'.join(p)}"
               for p in REQUIRED_SECTIONS]
    if missing:
        return Item("configmap", FAIL, f"configmap {CONFIGMAP} lacks {', '.join(missing)} "
                    "(Kestra needs all three datasource sections)", details,
                    data=[{"missing": m} for m in missing])
    return Item("configmap", PASS, f"configmap {CONFIGMAP} carries the three datasource "
                "sections", details)


def fetch_configmap(kube, namespace: str, *, timeout: float = 10.0) -> dict | None:
    """ConfigMap kestra-config as JSON through ``kube`` (a KubeReader), or None when it does
    not exist."""
    return kube.read("configmaps", namespace, CONFIGMAP, timeout=timeout, missing_ok=True)


def configmap_item(ctx) -> Item:
    return check_configmap(fetch_configmap(ctx.kube, ctx.namespace, timeout=ctx.timeout))


CHECKS = [
    Check("configmap", f"ConfigMap {CONFIGMAP} carries datasources.default, datasources.postgres "
          "and kestra.datasources.postgres", configmap_item, needs=("kube",)),
]
