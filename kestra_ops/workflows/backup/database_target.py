"""The database ``backup run`` dumps, per the chart's ``database.mode`` (the env's values).

* ``bundled``: as before, ``--database-url`` or KESTRA_OPS_DATABASE_URL (its password missing:
  KESTRA_OPS_DB_PASSWORD or its file), see :func:`kestra_ops.credentials.database_url`.
* ``external``: that URL when given, else one built from database.external (user, host, port,
  database). TLS follows database.external.sslmode (default verify-full): a URL without sslmode
  gets it; a URL asking for less is refused (exit 2), so a backup never downgrades what Kestra
  itself uses. Verification needs the server's CA where kestra-ops runs: ``sslrootcert=FILE`` in
  the URL, libpq's PGSSLROOTCERT (passed to pg_dump, read by psycopg), or ``sslrootcert=system``
  (libpq 16+: the system's CAs); libpq reports a missing one before connecting.
* ``cloudnativepg``: that URL when given, else the Cluster's read/write Service
  ``<clusterName>-rw.<namespace>.svc`` (CloudNativePG docs/src/service_management.md), the
  bootstrap database and its owner; the password is KESTRA_OPS_DB_PASSWORD or, with a cluster
  connection, the operator's Secret ``<clusterName>-app`` key ``password``
  (docs/src/applications.md "Secrets"). sslmode: database.cloudnativepg.sslmode, as above (the
  CA is the operator's Secret ``<clusterName>-ca`` key ``ca.crt``, docs/src/certificates.md).

Nothing here dials the database: the dump does (tests reach only loopback servers).
"""

from __future__ import annotations

from typing import Any, Mapping

from kestra_ops.adapters.postgres_url import SSLMODES, DatabaseURL
from kestra_ops.errors import InvalidInput, KestraOpsError

MODES = ("bundled", "external", "cloudnativepg")


def load_values(env) -> dict:
    """The env's merged values (its layers; the chart's defaults are not applied)."""
    from kestra_ops.values.merge import load_layers

    plain = load_layers(env.values_paths, fast=True).plain
    return plain if isinstance(plain, dict) else {}


def setting(values: Mapping[str, Any], *keys: str) -> Any:
    """``database.<keys>`` of ``values``, else the chart's default
    (:data:`kestra_ops.values.rules_database.DEFAULTS`)."""
    from kestra_ops.values.rules_database import DEFAULTS

    node: Any = values.get("database") if isinstance(values, Mapping) else None
    default: Any = DEFAULTS
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
        default = default.get(key) if isinstance(default, Mapping) else None
    return default if node in (None, "") else node


def database_mode(values: Mapping[str, Any]) -> str:
    mode = setting(values, "mode")
    if mode not in MODES:
        raise InvalidInput(f"database.mode {mode!r} in the values: expected "
                           f"{', '.join(MODES)}")
    return mode


def wanted_sslmode(values: Mapping[str, Any], mode: str) -> str | None:
    if mode == "bundled":
        return None
    return str(setting(values, "external" if mode == "external" else "cloudnativepg",
                       "sslmode"))


def with_tls(url: DatabaseURL, want: str | None, mode: str) -> DatabaseURL:
    """``url`` with sslmode ``want`` when it names none; refused when it names a weaker one."""
    if want is None:
        return url
    got = url.sslmode
    if got is None:
        return url.with_params(sslmode=want)
    if got not in SSLMODES:
        raise InvalidInput(f"database URL: sslmode {got!r} is not one of {', '.join(SSLMODES)}")
    if SSLMODES.index(got) < SSLMODES.index(want):
        section = "external" if mode == "external" else "cloudnativepg"
        raise InvalidInput(f"database URL: sslmode {got} is weaker than database.{section}."
                           f"sslmode {want} (database.mode {mode})",
                           hint=f"drop sslmode from the URL or use sslmode={want}")
    return url


def derived_url(env, values: Mapping[str, Any], mode: str) -> str:
    """The URL (no password) of ``mode``'s database as the values name it."""
    from urllib.parse import quote

    if mode == "external":
        host = str(setting(values, "external", "host") or "")
        if not host:
            raise InvalidInput("database.mode external: database.external.host is not set in "
                               "the values, and no --database-url / KESTRA_OPS_DATABASE_URL")
        port = setting(values, "external", "port") or 5432
        user, db = setting(values, "external", "username"), setting(values, "external",
                                                                     "database")
    else:
        host = f"{setting(values, 'cloudnativepg', 'clusterName')}-rw.{env.namespace}.svc"
        port, user = 5432, setting(values, "cloudnativepg", "owner")
        db = setting(values, "cloudnativepg", "database")
    netloc = f"{quote(str(user), safe='')}@{host}:{port}"
    return f"postgresql://{netloc}/{quote(str(db), safe='')}"


def resolve_database(env, given: str | None = None, *, values: Mapping[str, Any] | None = None,
                     environ: Mapping[str, str] | None = None, kube=None) -> DatabaseURL:
    """The database to dump (see the module doc). ``values``: the env's merged values (read from
    its layers when None); ``kube``: a cluster connection (or a function making one) for the
    CloudNativePG owner's Secret, used only when no password is given otherwise."""
    import os

    from kestra_ops import credentials

    environ = os.environ if environ is None else environ
    values = load_values(env) if values is None else values
    mode = database_mode(values)
    text = given or environ.get(credentials.DATABASE_URL_VAR)
    if mode == "bundled" or text:
        url = credentials.database_url(given, environ=environ)
    else:
        url = credentials.database_url(derived_url(env, values, mode), environ=environ)
        if url.password is None and mode == "cloudnativepg" and kube is not None:
            url = DatabaseURL(url.url, _cnpg_password(env, values, kube))
    return with_tls(url, wanted_sslmode(values, mode), mode)


def _cnpg_password(env, values: Mapping[str, Any], kube) -> str | None:
    """The owner's password from the operator's Secret ``<cluster>-app`` (key password)."""
    from kestra_ops.credentials import Credential, Resolver

    name = f"{setting(values, 'cloudnativepg', 'clusterName')}-app"
    cred = Credential("KESTRA_OPS_DB_PASSWORD", "database password",
                      default_secret=(name, "password"))
    resolver = Resolver(environ={}, values={}, kube=kube, namespace=env.namespace)
    try:
        return resolver.get(cred).value
    except KestraOpsError:
        return None
