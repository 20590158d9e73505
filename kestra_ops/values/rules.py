"""Kestra rules for merged values: one function per concern, each yielding :class:`Hit`.

``env`` decides strictness: ``dev`` downgrades some errors to warnings; an unknown environment
(a file validated on its own) is held to the production rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any, Iterator

from kestra_ops.redact import is_placeholder, mask_embedded

MISSING = object()
DS_SECTIONS = (("datasources", "default"), ("datasources", "postgres"),
               ("kestra", "datasources", "postgres"))
DS_REFERENCE = ("datasources", "postgres")
# Kestra's own rules (kestra-facts.md, "Basic auth")
USERNAME_RE = re.compile(r"^[a-zA-Z0-9_!#$%&’*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$")
PASSWORD_RE = re.compile(r"(?=.{8,})(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9]).*")
JDBC_RE = re.compile(r"^jdbc:postgresql://(?P<hosts>[^/?#\s]+)/(?P<db>[^/?#\s]+)(?:\?\S*)?$")
HOST_RE = re.compile(r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                     r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
CLUSTER_DNS_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
                            r"\.svc(\.cluster\.local)?$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
GLOB_RE = re.compile(r"^[A-Za-z0-9_$*?]+(\.[A-Za-z0-9_$*?]+)*$")
KNOWN_PLUGIN_GROUPS = (
    "docker", "scripts", "jdbc", "aws", "gcp", "azure", "kubernetes", "git", "fs", "notifications",
    "core", "serdes", "transform", "dbt", "airbyte", "fivetran", "singer", "spark", "kafka", "mqtt",
    "nats", "pulsar", "redis", "mongodb", "elasticsearch", "opensearch", "cassandra", "couchbase",
    "debezium", "neo4j", "amqp", "servicenow", "github", "jira", "terraform", "ansible", "modal",
    "databricks", "snowflake", "http", "ssh", "sqlmesh", "soda", "weaviate", "openai", "ee")
DOCKER_PROBE = "io.kestra.plugin.docker.Run"
LEGACY_KEYS = {
    ("configuration",): "0.x 'configuration' is now the top-level 'kestra' and 'datasources' sections",
    ("configurationPath",): "the config path is fixed by the chart (/app/confs/application.yml); remove it",
    ("secrets",): "0.x 'secrets' are gone: store them in Kubernetes Secrets named in 'existingSecrets'",
    ("externalSecret",): "use 'existingSecrets' to name the Secrets the chart reads",
    ("serviceAccountName",): "remove it; the chart's pods use the namespace default service account",
    ("deployments",): "0.x 'deployments.*' is now 'standalone' (one standalone server)",
    ("executable",): "remove it; the server command is built from 'standalone.workerThreads'",
    ("dind",): "Docker-in-Docker is not deployed; docker plugins are blacklisted",
    ("resources",): "move pod resources to 'standalone.resources'",
    ("affinity",): "move to 'standalone.affinity'",
    ("nodeSelector",): "move to 'standalone.nodeSelector'",
    ("tolerations",): "move to 'standalone.tolerations'",
    ("readinessProbe",): "probes are fixed by the chart on port 8081; remove it",
    ("livenessProbe",): "probes are fixed by the chart on port 8081; remove it",
    ("postgresql",): "the bitnami 'postgresql' subchart is replaced by the bundled 'postgres' StatefulSet",
    ("minio",): "never deploy a per-Kestra MinIO: use the shared cluster MinIO (kestra.storage.minio)",
    ("image", "image"): "'image.image' is now 'image.repository'",
    ("kestra", "server", "basic-auth", "enabled"): "'enabled' is ignored since 0.24: basic auth is mandatory",
}


@dataclass(frozen=True)
class Hit:
    """What a rule found, at a path of the merged values (located by the caller)."""

    rule: str
    severity: str
    message: str
    path: tuple
    hint: str | None = None


@dataclass(frozen=True)
class Context:
    """What the rules see: the merged values and the environment's name."""

    values: dict
    env: str | None

    @property
    def strict(self) -> bool:
        return self.env != "dev"

    def get(self, path: tuple, default: Any = MISSING) -> Any:
        node: Any = self.values
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node

    def get_any(self, *paths: tuple) -> tuple[tuple, Any]:
        """The first of ``paths`` that exists (Micronaut accepts kebab and camel case)."""
        for path in paths:
            value = self.get(path)
            if value is not MISSING:
                return path, value
        return paths[0], MISSING


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def datasources(ctx: Context) -> Iterator[Hit]:
    present = {}
    for path in DS_SECTIONS:
        section = ctx.get(path)
        if not isinstance(section, dict):
            yield Hit("kestra/datasource-missing", "error", f"{dotted(path)} is missing", path,
                      "Kestra 1.x needs kestra.datasources.postgres, datasources.default and "
                      "datasources.postgres with the same url, username and password")
        else:
            present[path] = section
    ref_path = DS_REFERENCE if DS_REFERENCE in present else next(iter(present), None)
    if ref_path is None:
        return
    ref = present[ref_path]
    for path, section in present.items():
        for key in ("url", "username", "password"):
            if path == ref_path or key not in section or key not in ref or section[key] == ref[key]:
                continue
            if key == "password":
                shown = ("" if not (is_placeholder(section[key]) and is_placeholder(ref[key]))
                         else f" ({section[key]} vs {ref[key]})")
                msg = f"{dotted(path)}.password differs from {dotted(ref_path)}.password{shown}"
            else:
                msg = (f"{dotted(path)}.{key} {_shown(section[key])} differs from "
                       f"{dotted(ref_path)}.{key} {_shown(ref[key])}")
            yield Hit("kestra/datasource-mismatch", "error", msg, path + (key,),
                      f"use the same {key} in all three datasource sections")
    urls_seen = set()
    for path, section in present.items():
        url = section.get("url")
        if isinstance(url, str) and url not in urls_seen:
            urls_seen.add(url)
            yield from _jdbc_url(url, path + ("url",))
        driver = section.get("driver-class-name", section.get("driverClassName"))
        if isinstance(driver, str) and driver != "org.postgresql.Driver":
            yield Hit("kestra/jdbc-driver", "warning", f"{dotted(path)} uses driver {driver!r}",
                      path + ("driver-class-name",), "set driver-class-name: org.postgresql.Driver")
    for parent in (("datasources",), ("kestra", "datasources")):
        names = ctx.get(parent)
        if isinstance(names, dict):
            for name in names:
                if name not in ("default", "postgres"):
                    yield Hit("kestra/datasource-name", "warning",
                              f"datasource {dotted(parent + (name,))} is not used by Kestra",
                              parent + (name,),
                              "Flyway migrations run only on the datasource named 'postgres'")
    for key in ("queue", "repository"):
        kind = ctx.get(("kestra", key, "type"))
        if kind is not MISSING and kind != "postgres":
            yield Hit("kestra/datasource-name", "error", f"kestra.{key}.type is {kind!r}",
                      ("kestra", key, "type"), f"set kestra.{key}.type: postgres")


def _shown(value) -> str:
    """``value`` quoted for a message, any secret inside it (a URL's password) masked."""
    return repr(mask_embedded(value)) if isinstance(value, str) else repr(value)


def _jdbc_url(url: str, path: tuple) -> Iterator[Hit]:
    hint = "expected jdbc:postgresql://HOST[:PORT]/DATABASE, e.g. jdbc:postgresql://kestra-postgres:5432/kestra"
    if is_placeholder(url):
        return
    m = JDBC_RE.match(url)
    if not m:
        yield Hit("kestra/jdbc-url", "error", f"{dotted(path)} {_shown(url)} is not a PostgreSQL JDBC URL",
                  path, hint)
        return
    if "@" in m.group("hosts"):
        yield Hit("kestra/jdbc-url", "error",
                  f"{dotted(path)} carries credentials before its host (user:password@)", path,
                  "the PostgreSQL driver reads no credentials there: set username, and password "
                  "as ${KESTRA_DB_PASSWORD}")
        return
    for hostport in m.group("hosts").split(","):
        host, _, port = hostport.partition(":")
        bad_port = port and (not port.isdigit() or not 0 < int(port) < 65536)
        if not HOST_RE.match(host) or bad_port:
            yield Hit("kestra/jdbc-url", "error",
                      f"{dotted(path)} has an invalid host or port {_shown(hostport)}", path,
                      hint)


def basic_auth(ctx: Context) -> Iterator[Hit]:
    path, auth = ctx.get_any(("kestra", "server", "basic-auth"), ("kestra", "server", "basicAuth"))
    if not isinstance(auth, dict):
        yield Hit("kestra/basic-auth-missing", "error", "kestra.server.basic-auth is not set", path,
                  "basic auth is mandatory since Kestra 0.24: set username (an email) and password")
        return
    user = auth.get("username")
    if isinstance(user, str) and not is_placeholder(user):
        if len(user) > 256 or not USERNAME_RE.match(user):
            yield Hit("kestra/basic-auth-username", "error",
                      f"basic-auth username {user!r} is not an email address", path + ("username",),
                      "Kestra requires an email, e.g. admin@example.com")
    elif user is None:
        yield Hit("kestra/basic-auth-missing", "error", "basic-auth username is not set",
                  path, "set kestra.server.basic-auth.username to an email")
    password = auth.get("password")
    if isinstance(password, (str, int)) and not is_placeholder(password):
        password = str(password)
        if len(password) > 256 or not PASSWORD_RE.match(password):
            yield Hit("kestra/basic-auth-password", "error",
                      f"basic-auth password does not meet Kestra's rule ({len(password)} characters)",
                      path + ("password",),
                      "8+ characters with upper case, lower case and a digit; better: a Secret "
                      "referenced as ${KESTRA_BASIC_AUTH_PASSWORD}")
    elif password is None:
        yield Hit("kestra/basic-auth-missing", "error", "basic-auth password is not set", path,
                  "set password: ${KESTRA_BASIC_AUTH_PASSWORD} (fed from the basic-auth Secret)")
