"""What the caller may do in the cluster, asked of the API server: SelfSubjectAccessReviews (one
question per verb and resource; nothing is written) and whether a namespace can be read.

Calls go through :meth:`~kestra_ops.adapters.kube.Kube.call` (typed, one-line errors)."""

from __future__ import annotations


def prepare(kube) -> None:
    """Build the client's authorization API now, before threads share it."""
    kube.authorization  # noqa: B018 - a cached property: built once, here


def pool_size(kube, default: int) -> int:
    """How many connections the client keeps (concurrent questions beyond it would wait)."""
    return getattr(kube.api_client.configuration, "connection_pool_maxsize", default) or 1


def allowed(kube, namespace: str, verb: str, resource: str, group: str = "",
            subresource: str = "") -> bool:
    """Whether the caller may ``verb`` ``resource`` (of ``group``) in ``namespace``."""
    attrs = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if subresource:
        attrs["subresource"] = subresource
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    review = kube.call("selfsubjectaccessreview",
                       kube.authorization.create_self_subject_access_review, body)
    return bool(review.status and review.status.allowed)


def read_namespace(kube, namespace: str) -> None:
    """Read the namespace (:class:`NotFound` when it does not exist, :class:`PermissionDenied`
    when the caller may not get namespaces)."""
    kube.call(f"namespace {namespace}", kube.core.read_namespace, namespace)
