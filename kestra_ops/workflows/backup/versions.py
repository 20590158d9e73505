"""The versions a backup set records (manifest ``versions``): Kestra, PostgreSQL, the chart, the
image and its digest. Best effort: whatever cannot be read is None, never a failure.

The chart and image come from the running Kestra pod (the chart's pod template carries the
``helm.sh/chart`` label, charts/kestra/templates/_helpers.tpl ``kestra.labels``; the container
is ``kestra``, templates/deployment.yaml); the digest is the container status's ``imageID``
(``<repo>@sha256:...`` as the kubelet resolved it).
"""

from __future__ import annotations

from kestra_ops.errors import KestraOpsError

CONTAINER = "kestra"
COMPONENT = "standalone"


def collect(env, *, kube=None, kestra_version: str | None = None,
            postgres_version: str | None = None) -> dict:
    out = {"kestra": kestra_version, "postgres": postgres_version, "chart": None,
           "image": None, "image_digest": None}
    try:
        if kube is None:
            from kestra_ops import wiring

            kube = wiring.kube(env)
        out.update(from_pods(_pods(kube, env)))
    except (KestraOpsError, OSError, ValueError):  # no cluster configured or reachable
        pass
    return out


def _pods(kube, env) -> list[dict]:
    from kestra_ops.adapters.kube_read import KubeReader

    selector = (f"app.kubernetes.io/component={COMPONENT},"
                f"app.kubernetes.io/instance={env.release}")
    return KubeReader(kube).pods(env.namespace, label_selector=selector, timeout=5.0)


def from_pods(pods: list[dict]) -> dict:
    """chart / image / image_digest of the first running Kestra pod (None when none runs)."""
    found: dict = {}
    for pod in sorted(pods, key=lambda p: (p.get("status") or {}).get("phase") != "Running"):
        labels = (pod.get("metadata") or {}).get("labels") or {}
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") != CONTAINER:
                continue
            image_id = cs.get("imageID") or ""
            digest = image_id.rsplit("@", 1)[1] if "@" in image_id else None
            found = {"chart": labels.get("helm.sh/chart"), "image": cs.get("image"),
                     "image_digest": digest}
            return found
    return found
