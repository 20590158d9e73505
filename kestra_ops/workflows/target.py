"""Which cluster a command talks to, in one line: the progress header of deploy, release,
rollback and check, and preflight's title, so no one deploys to the wrong cluster."""

from __future__ import annotations


def context_name(env) -> str:
    """The kube context in use: the environment's (flag, variable or file), else the
    kubeconfig's current context, by name."""
    from kestra_ops.adapters.kube import context_in_use

    return context_in_use(env)


def target(env) -> str:
    """``release kestra in hyperplane-kestra (context k8s-local)``."""
    return f"release {env.release} in {env.namespace} (context {context_name(env)})"
