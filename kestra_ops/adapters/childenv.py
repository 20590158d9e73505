"""The environment of the programs kestra-ops starts: only what each one needs.

A child process (helm, pg_dump, pg_restore) is started with an environment built from an
ALLOWLIST, never a copy of ours: our own variables (``KESTRA_OPS_*``: database and MinIO
passwords, keys, tokens) and any other credential in the caller's environment (``GITHUB_TOKEN``,
``VAULT_TOKEN``, ...) stay in this process.

* every child: ``PATH``, ``HOME``, ``USER``, ``LOGNAME``, ``LANG``, ``LANGUAGE``, ``LC_*``, ``TZ``,
  ``TMPDIR``;
* helm: ``KUBECONFIG``, ``HELM_*``, ``XDG_*``, the proxy variables, ``SSL_CERT_FILE`` /
  ``SSL_CERT_DIR``, and the cloud credentials a kubeconfig's exec credential plugin (``aws eks
  get-token``, ``gke-gcloud-auth-plugin``, ``kubelogin``) reads, as helm's own child:
  ``AWS_*``, ``AZURE_*``, ``GOOGLE_*``, ``CLOUDSDK_*``, ``USE_GKE_GCLOUD_AUTH_PLUGIN``;
* pg_dump / pg_restore: libpq's ``PG*`` variables (``PGSSLMODE``, ``PGPASSFILE``...) except
  ``PGPASSWORD``, which the caller sets to the database's password itself;
* ``KESTRA_OPS_PASS_ENV``: a comma list of further names to pass (for a setup the lists above
  miss); a ``KESTRA_OPS_*`` name is never passed, listed or not.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping

PASS_ENV = "KESTRA_OPS_PASS_ENV"
OURS = "KESTRA_OPS_"

BASE = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR")
BASE_PREFIXES = ("LC_",)
HELM = ("KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
        "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "USE_GKE_GCLOUD_AUTH_PLUGIN")
HELM_PREFIXES = ("HELM_", "XDG_", "AWS_", "AZURE_", "GOOGLE_", "CLOUDSDK_")
POSTGRES_PREFIXES = ("PG",)
POSTGRES_NEVER = ("PGPASSWORD",)


def _extra(environ: Mapping[str, str]) -> set[str]:
    return {n.strip() for n in environ.get(PASS_ENV, "").split(",") if n.strip()}


def build(names: Iterable[str] = (), prefixes: Iterable[str] = (), *, never: Iterable[str] = (),
          environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowed part of ``environ`` (default: ours): the base list, ``names``, names starting
    with one of ``prefixes``, and those of ``KESTRA_OPS_PASS_ENV``; minus ``never`` and every
    ``KESTRA_OPS_*``."""
    environ = os.environ if environ is None else environ
    allowed = set(BASE) | set(names) | _extra(environ)
    starts = tuple(BASE_PREFIXES) + tuple(prefixes)
    blocked = set(never)
    return {k: v for k, v in environ.items()
            if (k in allowed or k.startswith(starts)) and k not in blocked
            and not k.upper().startswith(OURS)}


def for_helm(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    return build(HELM, HELM_PREFIXES, environ=environ)


def for_postgres(password: str | None = None, *,
                 environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """libpq's variables; ``PGPASSWORD`` = ``password`` when given, else the caller's own
    ``PGPASSWORD`` (libpq's documented way, the same one psycopg reads in this process)."""
    environ = os.environ if environ is None else environ
    env = build(names=(), prefixes=POSTGRES_PREFIXES, never=POSTGRES_NEVER, environ=environ)
    if password is not None:
        env["PGPASSWORD"] = password
    elif environ.get("PGPASSWORD"):
        env["PGPASSWORD"] = environ["PGPASSWORD"]
    return env
