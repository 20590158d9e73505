"""Wiring: the clients an environment needs, built from its settings, values, Secrets and
variables (credentials through :mod:`kestra_ops.credentials`, never read here directly).

* :func:`kube` - the Kubernetes API (the env's context; ``KESTRA_OPS_KUBECONFIG``);
* :func:`helm` - the helm facade for the env's context;
* :func:`storage_for_env` - the env's object storage with Kestra's bucket-scoped key, or MinIO's
  root credentials (``root=True``, minio setup only); region, addressing and TLS CA from
  minio.* (:mod:`kestra_ops.storage_options`), certificates unchecked only with --insecure;
* :func:`backup_storage_for_env` - the backup destination (``env.backup_target``: endpoint,
  secure, bucket ``backup.bucket``) with the backup key (KESTRA_OPS_BACKUP_ACCESS_KEY /
  _SECRET_KEY), or Kestra's key with a warning when no backup key is set
  (:func:`kestra_ops.credentials.backup_key`);
* :func:`client_for_env` - Kestra's API. URL: ``--kestra-url`` > KESTRA_OPS_KESTRA_URL > the
  environment's ``kestra_url`` > the Kubernetes API's service proxy
  (:mod:`kestra_ops.adapters.kestra_route`; Kestra's credentials then travel as its
  ``BASIC_AUTH`` cookie). Credentials: the basic-auth username (variable, file, values) and
  password (variable, file, the basic-auth Secret of ``existingSecrets.basicAuth``). When none
  can be found the client is still built (``/configs`` needs none); ``no_credentials_reason``
  says why, and a 401 repeats it. TLS is verified unless ``insecure=True``, which adds a line
  to ``client.warnings`` for the caller to show.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from kestra_ops import credentials as creds
from kestra_ops.errors import KestraOpsError

SERVICE = "kestra"
DEFAULT_SECRET = creds.BASIC_AUTH_PASSWORD.default_secret
URL_VAR = "KESTRA_OPS_KESTRA_URL"
INSECURE_WARNING = ("TLS certificate verification is disabled (--insecure): the Kestra "
                    "credentials could be sent to an impostor")


def kube(env):
    """A Kubernetes connection for ``env`` (its context and namespace)."""
    from kestra_ops.adapters.kube import connect

    return connect(env)


def helm(env, *, helm: str | None = None):
    """The helm facade for ``env`` (``helm`` names the binary)."""
    from kestra_ops.adapters.helm import Helm

    return Helm.for_env(env, helm=helm)


def storage_for_env(env, *, environ: Mapping[str, str] | None = None, region: str | None = None,
                    timeout: float = 10.0, root: bool = False):
    """(the environment's :class:`~kestra_ops.adapters.storage.Storage`, "") or (None, why it is
    not configured: no endpoint, no bucket, or no credentials). Credentials: Kestra's
    bucket-scoped key, or with ``root`` MinIO's root credentials."""
    if not env.minio_endpoint:
        return None, ("no MinIO endpoint for this environment (minio.endpoint in "
                      "kestra-ops.yaml or KESTRA_OPS_MINIO_ENDPOINT)")
    if not env.minio_bucket:
        return None, "no bucket for this environment (minio.bucket)"
    resolver = creds.Resolver(environ=environ)
    pick = creds.minio_root if root else creds.minio_key
    access, secret, why = pick(resolver)
    if why:
        return None, why
    from kestra_ops.adapters.storage import Storage
    from kestra_ops.storage_options import minio_options

    options = minio_options(env)
    options["region"] = options["region"] or region  # kestra-ops.yaml's, else the caller's
    return Storage(env.minio_endpoint, access, secret, secure=env.minio_secure,
                   timeout=timeout, **options), ""


def storage_or_fail(env, what: str, **kwargs):
    """The environment's storage, or :class:`ConfigError` "WHAT: why not"."""
    from kestra_ops.errors import ConfigError

    storage, why = storage_for_env(env, **kwargs)
    if storage is None:
        raise ConfigError(f"{what}: {why}")
    return storage


def backup_storage_for_env(env, *, environ: Mapping[str, str] | None = None,
                           timeout: float = 10.0):
    """(Storage, bucket, warning, "") of the backup destination, or (None, bucket, "", why it
    is not configured). ``warning`` is non-empty when Kestra's own key stands in for the
    backup key (see :func:`kestra_ops.credentials.backup_key`)."""
    endpoint, secure, bucket = env.backup_target
    if not endpoint:
        return None, bucket, "", ("no endpoint for the backups (backup.endpoint or "
                                  "minio.endpoint in kestra-ops.yaml, or "
                                  "KESTRA_OPS_MINIO_ENDPOINT)")
    access, secret, warning, why = creds.backup_key(creds.Resolver(environ=environ))
    if why:
        return None, bucket, "", why
    from kestra_ops.adapters.storage import Storage
    from kestra_ops.storage_options import backup_options

    return (Storage(endpoint, access, secret, secure=secure, timeout=timeout,
                    **backup_options(env)), bucket, warning, "")


def backup_storage_or_fail(env, what: str, **kwargs):
    """(Storage, bucket, warning) of the backup destination, or :class:`ConfigError`."""
    from kestra_ops.errors import ConfigError

    storage, bucket, warning, why = backup_storage_for_env(env, **kwargs)
    if storage is None:
        raise ConfigError(f"{what}: {why}")
    return storage, bucket, warning


def client_for_env(env, *, kube=None, environ: Mapping[str, str] | None = None,
                   kestra_url: str | None = None, insecure: bool = False,
                   values: Mapping[str, Any] | None = None, timeout: float = 10.0,
                   retries: int = 3):
    """A :class:`~kestra_ops.adapters.kestra_api.KestraClient` for ``env`` (see the module doc;
    ``kube`` is connected here when needed and not given; ``values`` are the merged values,
    loaded from the env's layers when not given)."""
    from kestra_ops.adapters.kestra_api import KestraClient

    environ = os.environ if environ is None else environ
    warnings: list[str] = []
    owned = []

    def get_values() -> Mapping[str, Any]:
        return values if values is not None else _load_values(env, warnings)

    def get_kube():
        nonlocal kube
        if kube is None:
            kube = _connect(env)
            owned.append(kube)
        return kube

    resolver = creds.Resolver(environ=environ, values=get_values, kube=get_kube,
                              namespace=env.namespace)
    try:
        url, route = _pick_url(kestra_url, environ, env)
        user = resolver.get(creds.BASIC_AUTH_USERNAME)
        password = resolver.get(creds.BASIC_AUTH_PASSWORD)
        reason = password.why if password.value is None else user.why
        username, secret = user.value, password.value
        source = password.source if secret else None
        if source in ("environment", "flag"):
            source = "environment"
        if username is None and secret is not None:
            secret, source = None, None
        session, verify, headers, auth_mode, management = None, not insecure, {}, "header", None
        if url is None:
            from kestra_ops.adapters.kestra_route import kube_session, proxy_url

            connection = get_kube()
            service = resolver.values.get("service")
            service = service if isinstance(service, Mapping) else {}
            port, mport = service.get("port") or 8080, service.get("managementPort") or 8081
            url = proxy_url(connection, env.namespace, SERVICE, port)
            management = proxy_url(connection, env.namespace, SERVICE, mport)
            route = f"Kubernetes API service proxy ({connection.source})"
            session, kube_verify, headers = kube_session(connection)
            verify = kube_verify if not insecure else False
            auth_mode = "cookie"
        client = KestraClient(url, username, secret, verify=verify, timeout=timeout,
                              retries=retries, session=session, headers=headers,
                              auth_mode=auth_mode, management_url=management)
    finally:
        for connection in owned:
            connection.close()
    from kestra_ops.config_schema import plain_http_host

    plain = plain_http_host(client.url) if secret else None
    if plain:
        warnings.append(f"Kestra's URL is plain http:// ({plain}): the basic-auth credentials "
                        "travel unencrypted; use https://")
    if insecure:
        from kestra_ops.adapters.kestra_route import silence_insecure_warnings

        silence_insecure_warnings()
        warnings.insert(0, INSECURE_WARNING)
    client.warnings.extend(warnings)
    client.route = route
    client.credentials_source = source if secret else None
    client.no_credentials_reason = "" if secret else (
        reason or f"{creds.BASIC_AUTH_USERNAME.variable} / "
                  f"{creds.BASIC_AUTH_PASSWORD.variable} are not set")
    return client


_connect = kube  # client_for_env's ``kube`` argument hides the function's name


def chosen_url(flag: str | None, env, environ: Mapping[str, str] | None = None
               ) -> tuple[str | None, str | None]:
    """(URL, how it was chosen) when one is given by ``--kestra-url``, KESTRA_OPS_KESTRA_URL or
    the environment, without any ``user:password@``; (None, None) when the service proxy would
    be used (its URL needs the kubeconfig: see :func:`client_for_env`, ``client.url``)."""
    from urllib.parse import urlsplit, urlunsplit

    url, route = _pick_url(flag, os.environ if environ is None else environ, env)
    if url is None:
        return None, None
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), route


def _pick_url(flag: str | None, environ: Mapping[str, str], env) -> tuple[str | None, str]:
    for value, route in ((flag, "--kestra-url"), (environ.get(URL_VAR), URL_VAR),
                         (env.kestra_url, "kestra_url of the environment")):
        if value and str(value).strip():
            return str(value).strip(), route
    return None, ""


def _load_values(env, warnings: list[str]) -> Mapping[str, Any]:
    from kestra_ops.values.merge import load_layers

    try:
        plain = load_layers(env.values_paths).plain
    except (KestraOpsError, OSError) as err:
        warnings.append(f"values of environment {env.name!r} not readable ({err}); "
                        f"assuming Secret {DEFAULT_SECRET[0]}/{DEFAULT_SECRET[1]}")
        return {}
    return plain if isinstance(plain, Mapping) else {}
