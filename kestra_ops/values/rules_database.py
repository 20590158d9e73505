"""Rule kestra/database-url: the datasource URLs name the database of ``database.mode``.

Why a rule and not URLs derived by the chart: ``datasources`` and ``kestra.datasources`` are
Kestra's application.yml, rendered verbatim into ConfigMap kestra-config, and kestra-ops reads
them from the values (diffs, the ConfigMap backup and patch, the credentials). A chart that
rewrote them per mode would make the values say one URL while Kestra runs another, and would
have to merge into the user's HikariCP keys; the bundled render would also change. Keeping the
URLs verbatim and checking them here keeps one visible source of truth, leaves the bundled render
byte-identical, and a wrong URL is an error at its file:line (``values validate``, ``plan``,
``deploy``) instead of a Kestra pod that cannot connect.

What each mode requires of all three datasources (url, username):

* ``bundled``: nothing new (the existing kestra/jdbc-url and kestra/datasource-mismatch rules);
* ``external``: ``jdbc:postgresql://<host>:<port>/<database>?sslmode=<sslmode>`` of
  database.external, ``&sslrootcert=/app/db-ca/<ca.key>`` when a CA Secret/ConfigMap is named
  (the chart mounts it there), username = database.external.username; host must be set;
* ``cloudnativepg``: host ``<clusterName>-rw`` (or ``<clusterName>-rw.<namespace>[.svc...]``),
  the Cluster's read/write Service, port 5432, the bootstrap database, username = its owner,
  ``sslmode`` = database.cloudnativepg.sslmode and, for verify-*, ``sslrootcert=/app/db-ca/ca.crt``
  (Secret ``<clusterName>-ca`` mounted by the chart). CloudNativePG sources: see
  charts/kestra/templates/_database.tpl.

pgjdbc reads ``sslmode`` and ``sslrootcert`` from the URL's query
(https://jdbc.postgresql.org/documentation/use/ "Connection Parameters"); without sslmode it
uses ``prefer``, so the mode's sslmode must be written out.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

from kestra_ops.redact import is_placeholder
from kestra_ops.values.rules import DS_SECTIONS, JDBC_RE, MISSING, Context, Hit, dotted

CA_DIR = "/app/db-ca"  # charts/kestra/templates/_database.tpl kestra.dbCAPath
PG_PORT = 5432
# charts/kestra/values.yaml `database:` (tests/unit/test_values_database.py keeps them equal)
DEFAULTS = {
    "mode": "bundled",
    "external": {"host": "", "port": 5432, "database": "kestra", "username": "kestra",
                 "sslmode": "verify-full",
                 "ca": {"secretName": "", "configMapName": "", "key": "ca.crt"}},
    "cloudnativepg": {"clusterName": "kestra-db", "database": "kestra", "owner": "kestra",
                      "sslmode": "verify-full"},
}
RULE = "kestra/database-url"


def _setting(ctx: Context, *keys: str):
    value = ctx.get(("database",) + keys)
    if value is MISSING or value is None:
        value = DEFAULTS
        for key in keys:
            value = value.get(key, "") if isinstance(value, dict) else ""
    return value


def expected(ctx: Context, mode: str) -> dict:
    """What the URLs of ``mode`` must say: hosts (accepted, lower case; a trailing ``.`` means
    "this prefix"), port, database, user, sslmode, sslrootcert (None: must be absent)."""
    if mode == "external":
        ca_key = _setting(ctx, "external", "ca", "key") or "ca.crt"
        has_ca = bool(_setting(ctx, "external", "ca", "secretName")
                      or _setting(ctx, "external", "ca", "configMapName"))
        host = str(_setting(ctx, "external", "host") or "")
        return {"hosts": (host.lower(),), "port": _setting(ctx, "external", "port") or PG_PORT,
                "database": _setting(ctx, "external", "database"),
                "username": _setting(ctx, "external", "username"),
                "sslmode": _setting(ctx, "external", "sslmode"),
                "sslrootcert": f"{CA_DIR}/{ca_key}" if has_ca else None, "show": host}
    name = str(_setting(ctx, "cloudnativepg", "clusterName"))
    sslmode = _setting(ctx, "cloudnativepg", "sslmode")
    return {"hosts": (f"{name}-rw".lower(), f"{name}-rw.".lower()), "port": PG_PORT,
            "database": _setting(ctx, "cloudnativepg", "database"),
            "username": _setting(ctx, "cloudnativepg", "owner"), "sslmode": sslmode,
            "sslrootcert": f"{CA_DIR}/ca.crt" if str(sslmode).startswith("verify-") else None,
            "show": f"{name}-rw"}


def example_url(want: dict) -> str:
    query = f"sslmode={want['sslmode']}"
    if want["sslrootcert"]:
        query += f"&sslrootcert={want['sslrootcert']}"
    return f"jdbc:postgresql://{want['show']}:{want['port']}/{want['database']}?{query}"


def url_problems(url: str, want: dict) -> list[str]:
    """Why ``url`` (a JDBC URL) does not name ``want``; [] when it does or is not parseable
    (kestra/jdbc-url reports that)."""
    m = JDBC_RE.match(url)
    if not m:
        return []
    hosts = m.group("hosts").split(",")
    if len(hosts) != 1:
        return [f"names {len(hosts)} hosts"]
    host, _, port = hosts[0].rpartition(":") if ":" in hosts[0] else (hosts[0], "", "")
    problems = []
    host = host.lower()
    if not any(host == h or (h.endswith(".") and host.startswith(h)) for h in want["hosts"]):
        problems.append(f"host {host!r} is not {want['show']!r}")
    if str(port or PG_PORT) != str(want["port"]):
        problems.append(f"port {port or PG_PORT} is not {want['port']}")
    if m.group("db") != str(want["database"]):
        problems.append(f"database {m.group('db')!r} is not {want['database']!r}")
    query = url.partition("?")[2]
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    if params.get("sslmode") != want["sslmode"]:
        got = params.get("sslmode")
        problems.append(f"sslmode is {got!r}, not {want['sslmode']!r}" if got else
                        f"has no sslmode (pgjdbc would use prefer), not {want['sslmode']!r}")
    root = params.get("sslrootcert")
    if want["sslrootcert"] and root != want["sslrootcert"]:
        problems.append(f"sslrootcert is {root!r}, not {want['sslrootcert']!r} (the mounted CA)"
                        if root else f"has no sslrootcert={want['sslrootcert']} (the mounted CA)")
    elif not want["sslrootcert"] and root and root.startswith(CA_DIR + "/"):
        problems.append(f"sslrootcert {root!r}: no CA is mounted under {CA_DIR}")
    return problems


def database_urls(ctx: Context) -> Iterator[Hit]:
    mode = ctx.get(("database", "mode"))
    if mode not in ("external", "cloudnativepg"):
        return
    if mode == "external" and not _setting(ctx, "external", "host"):
        yield Hit(RULE, "error", "database.mode is external but database.external.host is not "
                  "set", ("database", "external", "host") if
                  ctx.get(("database", "external", "host")) is not MISSING else ("database",
                                                                                 "mode"),
                  "set database.external.host to the PostgreSQL server's host name")
        return
    want = expected(ctx, mode)
    for path in DS_SECTIONS:
        section = ctx.get(path)
        if not isinstance(section, dict):
            continue
        url = section.get("url")
        if isinstance(url, str) and not is_placeholder(url):
            problems = url_problems(url, want)
            if problems:
                yield Hit(RULE, "error", f"{dotted(path)}.url does not name the database of "
                          f"database.mode {mode}: " + "; ".join(problems), path + ("url",),
                          f"use {example_url(want)}")
        user = section.get("username")
        if isinstance(user, str) and not is_placeholder(user) and user != want["username"]:
            yield Hit(RULE, "error", f"{dotted(path)}.username {user!r} is not "
                      f"{want['username']!r}, the user of database.mode {mode}",
                      path + ("username",), f"set username: {want['username']}")
