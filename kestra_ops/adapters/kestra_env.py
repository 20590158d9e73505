"""Which Kestra, reached how, with which credentials, for one environment.

URL: ``--kestra-url`` > KESTRA_OPS_KESTRA_URL > the environment's ``kestra_url`` > the Kubernetes
API's service proxy ``{api}/api/v1/namespaces/{ns}/services/kestra:{port}/proxy`` (no
port-forward; the caller needs ``get`` on ``services/proxy``). Through the proxy the requests carry
the kubeconfig's credentials (bearer token, or client certificate and key) and CA, and Kestra's
credentials travel as its ``BASIC_AUTH`` cookie: the API server removes the ``Authorization``
header of every request it has authenticated (kubernetes/kubernetes#38775), so a Basic header
would never reach Kestra, whatever the kube authentication method.

Credentials: KESTRA_OPS_BASIC_AUTH_USERNAME / _PASSWORD, else the username from the values
(``kestra.server.basic-auth.username``) and the password from the basic-auth Secret
(``existingSecrets.basicAuth.name`` / ``passwordKey``). When none can be found the client is
still built (``/configs`` needs none); ``no_credentials_reason`` says why, and a 401 repeats it.
TLS is verified unless ``insecure=True``, which adds a line to ``client.warnings`` for the caller
to print (adapters never print).
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, Mapping

from kestra_ops.adapters.kestra_api import (PASSWORD_VAR, URL_VAR, USERNAME_VAR,
                                            KestraClient)
from kestra_ops.errors import InvalidInput, KestraOpsError, NotFound

SERVICE = "kestra"
DEFAULT_SECRET = ("kestra-basic-auth", "password")
INSECURE_WARNING = ("TLS certificate verification is disabled (--insecure): the Kestra "
                    "credentials could be sent to an impostor")


def client_for_env(env, *, kube=None, environ: Mapping[str, str] | None = None,
                   kestra_url: str | None = None, insecure: bool = False,
                   values: Mapping[str, Any] | None = None, timeout: float = 10.0,
                   retries: int = 3) -> KestraClient:
    """A :class:`KestraClient` for ``env`` (``kube`` is connected here when needed and not
    given; ``values`` are the merged values, loaded from the env's layers when not given)."""
    environ = os.environ if environ is None else environ
    warnings: list[str] = []
    loaded: dict[str, Any] = {}
    owned = None

    def get_values() -> Mapping[str, Any]:
        if values is not None:
            return values
        if "v" not in loaded:
            loaded["v"] = _load_values(env, warnings)
        return loaded["v"]

    def get_kube():
        nonlocal kube, owned
        if kube is None:
            from kestra_ops.adapters.kube import connect

            kube = owned = connect(env)
        return kube

    try:
        url, route = _pick_url(kestra_url, environ, env)
        username = environ.get(USERNAME_VAR) or None
        password = environ.get(PASSWORD_VAR) or None
        source, reason = ("environment", "") if password else (None, "")
        if username is None:
            username, why = _values_username(get_values())
            reason = why or reason
        if password is None:
            try:
                password, source = _secret_password(get_kube(), env.namespace, get_values())
            except KestraOpsError as err:
                reason = f"{PASSWORD_VAR} is not set and {err}"
        if username is None and password is not None:
            password, source = None, None
        session, verify, headers, auth_mode, management = None, not insecure, {}, "header", None
        if url is None:
            kube = get_kube()
            service = _mapping(get_values(), "service")
            port, mport = service.get("port") or 8080, service.get("managementPort") or 8081
            base = f"{kube.host.rstrip('/')}/api/v1/namespaces/{env.namespace}/services"
            url, management = f"{base}/{SERVICE}:{port}/proxy", f"{base}/{SERVICE}:{mport}/proxy"
            route = f"Kubernetes API service proxy ({kube.source})"
            session, kube_verify, headers = _kube_session(kube)
            verify = kube_verify if not insecure else False
            auth_mode = "cookie"
        client = KestraClient(url, username, password, verify=verify, timeout=timeout,
                              retries=retries, session=session, headers=headers,
                              auth_mode=auth_mode, management_url=management)
    finally:
        if owned is not None:
            owned.close()
    if insecure:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        warnings.insert(0, INSECURE_WARNING)
    client.warnings.extend(warnings)
    client.route = route
    client.credentials_source = source if password else None
    client.no_credentials_reason = "" if password else (
        reason or f"{USERNAME_VAR} / {PASSWORD_VAR} are not set")
    return client


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


def _kube_session(kube):
    """A requests session carrying the kubeconfig's credentials, CA and proxy."""
    import requests

    cfg = kube.api_client.configuration
    session = requests.Session()
    headers = {}
    # as the client does it (kubernetes >= 32 names the key BearerToken); runs the refresh hook
    token = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
    if token:
        headers["Authorization"] = token if " " in token else f"Bearer {token}"
    if cfg.cert_file:
        session.cert = (cfg.cert_file, cfg.key_file) if cfg.key_file else cfg.cert_file
    if cfg.proxy:
        session.proxies = {"http": cfg.proxy, "https": cfg.proxy}
    verify = (cfg.ssl_ca_cert or True) if cfg.verify_ssl else False
    return session, verify, headers


def _load_values(env, warnings: list[str]) -> Mapping[str, Any]:
    from kestra_ops.values.merge import load_layers

    try:
        plain = load_layers(env.values_paths).plain
    except (KestraOpsError, OSError) as err:
        warnings.append(f"values of environment {env.name!r} not readable ({err}); "
                        f"assuming Secret {DEFAULT_SECRET[0]}/{DEFAULT_SECRET[1]}")
        return {}
    return plain if isinstance(plain, Mapping) else {}


def _mapping(data: Any, *keys: str) -> Mapping[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data if isinstance(data, Mapping) else {}


def _values_username(values: Mapping[str, Any]) -> tuple[str | None, str]:
    server = _mapping(values, "kestra", "server")
    for key in ("basic-auth", "basicAuth"):
        user = _mapping(server, key).get("username")
        if isinstance(user, str) and user and "${" not in user:
            return user, ""
        if isinstance(user, str) and "${" in user:
            return None, (f"{USERNAME_VAR} is not set and kestra.server.{key}.username in "
                          "values is a placeholder")
    return None, f"{USERNAME_VAR} is not set and values carry no kestra.server.basic-auth.username"


def _secret_password(kube, namespace: str, values: Mapping[str, Any]) -> tuple[str, str]:
    entry = _mapping(values, "existingSecrets", "basicAuth")
    name = str(entry.get("name") or DEFAULT_SECRET[0])
    key = str(entry.get("passwordKey") or DEFAULT_SECRET[1])
    secret = kube.call(f"secret {name}", kube.core.read_namespaced_secret, name, namespace)
    encoded = (secret.data or {}).get(key)
    if encoded is None:
        raise NotFound(f"secret {name} has no key {key!r} (existingSecrets.basicAuth.passwordKey)")
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8"), f"secret {name}"
    except (binascii.Error, ValueError):
        raise InvalidInput(f"secret {name}: key {key!r} is not base64 of UTF-8 text") from None
