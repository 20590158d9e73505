"""How requests reach Kestra when no URL is given: through the Kubernetes API's service proxy
``{api}/api/v1/namespaces/{ns}/services/{service}:{port}/proxy`` (no port-forward; the caller
needs ``get`` on ``services/proxy``), carrying the kubeconfig's credentials (bearer token, or
client certificate and key), CA and proxy. (Kestra's own credentials then travel as its
``BASIC_AUTH`` cookie: the API server removes the ``Authorization`` header of every request it
has authenticated, kubernetes/kubernetes#38775.)"""

from __future__ import annotations


def proxy_url(kube, namespace: str, service: str, port: int | str) -> str:
    """The service proxy URL of ``service:port`` on ``kube``'s API server."""
    return (f"{kube.host.rstrip('/')}/api/v1/namespaces/{namespace}/services/"
            f"{service}:{port}/proxy")


def kube_session(kube):
    """(requests session, verify, headers) carrying the kubeconfig's credentials, CA and
    proxy."""
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


def silence_insecure_warnings() -> None:
    """With TLS verification off on request (--insecure), the caller warns once itself."""
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
