"""Which cluster a command talks to, in one line: the progress header of deploy, release,
rollback and check, and preflight's title, so no one deploys to the wrong cluster."""

from __future__ import annotations


def context_name(env) -> str:
    """The kube context in use: the environment's (flag, variable or file), else the
    kubeconfig's current context, by name."""
    from kestra_ops.adapters.kube import context_in_use

    return context_in_use(env)


def in_context(context: str) -> str:
    """``, context NAME`` for a report's title (nothing when unknown)."""
    return f", context {context}" if context else ""


def target(env, context: str | None = None) -> str:
    """``release kestra in hyperplane-kestra (context k8s-local)`` (``context``: already
    known)."""
    return f"release {env.release} in {env.namespace} (context {context or context_name(env)})"
