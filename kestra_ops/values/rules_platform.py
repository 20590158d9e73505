"""Kestra rules about the platform around the server: plugins, storage, pods, secrets, legacy keys."""

from __future__ import annotations

import fnmatch
import re

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Iterator

from kestra_ops.redact import literal_secrets
from kestra_ops.upgrades.values_rules import version_rule
from kestra_ops.values.rules import (CLUSTER_DNS_RE, DOCKER_PROBE, GLOB_RE,
                                     KNOWN_PLUGIN_GROUPS, LEGACY_KEYS, MISSING, Context, Hit,
                                     basic_auth, datasources, dotted)
from kestra_ops.values.rules_database import database_urls
from kestra_ops.values.rules_scale import connection_budget, distributed_replicas
from kestra_ops.values.rules_storage import bucket_name, s3_storage

_NOT_IP = re.compile(r"[g-zG-Z_-]")
DURATION_RE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)$")
ISO_DURATION_RE = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?"
                             r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.I)
KESTRA_DEFAULT_GRACE = 300.0  # kestra.server.termination-grace-period defaults to 5m


def valid_glob(entry) -> bool:
    """A blacklist entry that is a usable plugin-type glob (dotted Java names, * and ?)."""
    return isinstance(entry, str) and bool(GLOB_RE.match(entry)) and "**" not in entry


def valid_blacklist_entries(entries) -> tuple[str, ...]:
    """The entries of a ``kestra.plugins.blacklist`` value that are valid globs (none when it
    is not a list): what a blacklist built from it may use. Outside dev the caller adds the
    built-in minimum whatever this returns, and :func:`plugin_blacklist` makes every invalid
    or missing entry an error, so an empty result never means "nothing is blacklisted"."""
    if not isinstance(entries, list):
        return ()
    return tuple(dict.fromkeys(e for e in entries if valid_glob(e)))


def _maybe_ip(host: str) -> bool:
    """An IPv4/IPv6 literal; a name with a letter past f, '-' or '_' is none (ipaddress, ~1 ms
    to import, is then not needed on every values validate)."""
    if _NOT_IP.search(host):
        return False
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def plugin_blacklist(ctx: Context) -> Iterator[Hit]:
    path, entries = ctx.get_any(("kestra", "plugins", "blacklist"))
    if entries is MISSING or entries is None or entries == []:
        yield Hit("kestra/plugin-blacklist-missing", "error" if ctx.strict else "warning",
                  "kestra.plugins.blacklist is not set", path,
                  'set kestra.plugins.blacklist: ["io.kestra.plugin.docker.*"]')
        return
    if not isinstance(entries, list):
        return  # the schema reports the type
    for i, entry in enumerate(entries):
        if not isinstance(entry, str):
            continue
        here = path + (i,)
        if not valid_glob(entry):
            yield Hit("kestra/plugin-blacklist-glob", "error",
                      f"blacklist entry {entry!r} is not a valid plugin-type glob", here,
                      "dotted Java names with * or ?, e.g. io.kestra.plugin.docker.*")
            continue
        suggestion = _typo(entry)
        if suggestion:
            yield Hit("kestra/plugin-blacklist-typo", "error",
                      f"blacklist entry {entry!r} matches no plugin package", here,
                      f"did you mean {suggestion!r}?")
    if ctx.strict and not any(fnmatch.fnmatchcase(DOCKER_PROBE, e)
                              for e in valid_blacklist_entries(entries)):
        yield Hit("kestra/plugin-blacklist-docker", "error",
                  f"io.kestra.plugin.docker.* is not blacklisted in {ctx.env or 'this file'}", path,
                  'add "io.kestra.plugin.docker.*" to kestra.plugins.blacklist')


def _typo(entry: str) -> str | None:
    parts = entry.split(".")
    if len(parts) < 3 or parts[:2] != ["io", "kestra"] or "*" in parts[2]:
        return None
    if parts[2] not in ("plugin", "core", "jdbc", "storage", "ee"):
        fixed = _closest(parts[2], ["plugin", "core"], 0.6)
        return ".".join(parts[:2] + [fixed] + parts[3:]) if fixed else None
    if parts[2] == "plugin" and len(parts) > 3 and not any(c in parts[3] for c in "*?"):
        if parts[3] not in KNOWN_PLUGIN_GROUPS:
            close = _closest(parts[3], KNOWN_PLUGIN_GROUPS, 0.75)
            return ".".join(parts[:3] + [close] + parts[4:]) if close else None
    return None


def _closest(word: str, choices, cutoff: float) -> str | None:
    import difflib  # only for a misspelt entry (~0.6 ms to import)

    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return close[0] if close else None


def storage(ctx: Context) -> Iterator[Hit]:
    base = ("kestra", "storage", "minio")
    endpoint = ctx.get(base + ("endpoint",))
    if isinstance(endpoint, str):
        host = endpoint
        problem = None
        if "://" in endpoint:
            problem = "includes a URL scheme"
            host = endpoint.split("://", 1)[1].split("/", 1)[0]
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if _maybe_ip(host.strip("[]")):
            problem = "is an IP address"
        elif not CLUSTER_DNS_RE.match(host):
            problem = problem or "is not a cluster-internal DNS name"
        if problem:
            yield Hit("kestra/minio-endpoint", "error", f"MinIO endpoint {endpoint!r} {problem}",
                      base + ("endpoint",),
                      "use the shared cluster MinIO by its service DNS name, e.g. "
                      "minio.hyperplane-minio.svc.cluster.local (port and secure are separate keys)")
    bucket = ctx.get(base + ("bucket",))
    if isinstance(bucket, str):
        yield from bucket_name(ctx, base + ("bucket",), bucket)


def worker_threads(ctx: Context) -> Iterator[Hit]:
    path = ("standalone", "workerThreads")
    value = ctx.get(path)
    if isinstance(value, int) and not isinstance(value, bool) and not 4 <= value <= 256:
        yield Hit("kestra/worker-threads", "warning",
                  f"standalone.workerThreads is {value}", path,
                  "keep between 4 and 256 per pod; scale out past that" if value > 256
                  else "fewer than 4 worker threads serialise most flows")


def distributed_webserver(ctx: Context) -> Iterator[Hit]:
    """Outside dev, mode: distributed needs 2+ webserver pods: the webserver is the only
    component behind Service kestra (the API/UI), so one pod makes every rollout or node drain
    an outage. Executor/scheduler counts and the database connection budget are
    :mod:`kestra_ops.values.rules_scale`'s."""
    if ctx.get(("mode",)) != "distributed" or not ctx.strict:
        return
    path = ("distributed", "webserver", "replicas")
    value = ctx.get(path)
    if value is MISSING:
        value = 2  # the chart's default (charts/kestra/values.yaml distributed.webserver.replicas)
    if isinstance(value, int) and not isinstance(value, bool) and value < 2:
        yield Hit("kestra/distributed-webserver-replicas", "error",
                  f"distributed.webserver.replicas is {value} in {ctx.env or 'this file'}", path,
                  "run at least 2 webserver pods outside dev (Service kestra has no other backend)")


def worker_autoscaling(ctx: Context) -> Iterator[Hit]:
    """The workers' HorizontalPodAutoscaler (distributed.worker.autoscaling) scales on CPU
    utilization, which Kubernetes computes against the containers' CPU requests: without a CPU
    request it cannot scale at all (https://kubernetes.io/docs/tasks/run-application/
    horizontal-pod-autoscale/ "the HPA controller ... as a percentage of the equivalent resource
    request"); and minReplicas above maxReplicas is refused by the API server at deploy time."""
    base = ("distributed", "worker", "autoscaling")
    if ctx.get(("mode",)) != "distributed" or ctx.get(base + ("enabled",)) is not True:
        return
    requests = ctx.get(("distributed", "worker", "resources", "requests"))
    if not (isinstance(requests, dict) and requests.get("cpu") not in (None, "", 0)):
        yield Hit("kestra/worker-autoscaling", "error", "distributed.worker.autoscaling is "
                  "enabled but the workers have no CPU request: the autoscaler cannot compute "
                  "CPU utilization", ("distributed", "worker", "resources"),
                  "set distributed.worker.resources.requests.cpu (e.g. \"1\")")
    low, high = ctx.get(base + ("minReplicas",)), ctx.get(base + ("maxReplicas",))
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield Hit("kestra/worker-autoscaling", "error", f"distributed.worker.autoscaling."
                  f"minReplicas ({low}) is above maxReplicas ({high})", base + ("minReplicas",),
                  "minReplicas <= maxReplicas")


def parse_duration(text: str) -> float | None:
    """Micronaut durations (``30s``, ``5m``, ``PT5M``) -> seconds; None when unreadable."""
    text = text.strip()
    m = DURATION_RE.match(text)
    if m:
        return float(m["n"]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m["unit"]]
    m = ISO_DURATION_RE.match(text)
    if m and text.upper() not in ("P", "PT"):
        return (int(m["d"] or 0) * 86400 + int(m["h"] or 0) * 3600 + int(m["m"] or 0) * 60
                + float(m["s"] or 0))
    return None


def grace_period(ctx: Context) -> Iterator[Hit]:
    kpath, raw = ctx.get_any(("kestra", "server", "termination-grace-period"),
                             ("kestra", "server", "terminationGracePeriod"))
    kestra_grace = KESTRA_DEFAULT_GRACE
    if isinstance(raw, str):
        parsed = parse_duration(raw)
        if parsed is None:
            yield Hit("kestra/duration", "error", f"{dotted(kpath)} {raw!r} is not a duration",
                      kpath, "write it with a unit: 30s, 5m, 1h or PT5M")
            return
        kestra_grace = parsed
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        yield Hit("kestra/duration", "warning", f"{dotted(kpath)} {raw!r} has no unit", kpath,
                  "write it with a unit: 30s, 5m, 1h")
        return
    ppath = ("standalone", "terminationGracePeriodSeconds")
    pod = ctx.get(ppath)
    if isinstance(pod, int) and not isinstance(pod, bool) and pod <= kestra_grace:
        yield Hit("kestra/grace-period", "error",
                  f"pod grace period {pod}s does not exceed Kestra's {kestra_grace:g}s", ppath,
                  f"set standalone.terminationGracePeriodSeconds above {kestra_grace:g}, "
                  f"e.g. {int(kestra_grace) + 60}")


def plaintext_secrets(ctx: Context) -> Iterator[Hit]:
    for path in literal_secrets(ctx.values):
        if path and path[0] in ("existingSecrets",):
            continue
        yield Hit("kestra/plaintext-secret", "error" if ctx.strict else "warning",
                  f"{dotted(path)} holds a plaintext secret", path,
                  "store it in a Kubernetes Secret (kestra-ops secrets apply) and reference it "
                  "as ${ENV_VAR}")


def legacy_keys(ctx: Context) -> Iterator[Hit]:
    for path, hint in LEGACY_KEYS.items():
        if ctx.get(path) is not MISSING:
            yield Hit("kestra/legacy-key", "error", f"{dotted(path)} is a legacy 0.x chart key",
                      path, hint)


ALL_RULES = (datasources, basic_auth, plugin_blacklist, storage, worker_threads, grace_period,
             distributed_webserver, worker_autoscaling, distributed_replicas, connection_budget,
             plaintext_secrets, legacy_keys, version_rule, database_urls, s3_storage)


def run_rules(values: dict, env: str | None) -> list[Hit]:
    ctx = Context(values if isinstance(values, dict) else {}, env)
    return [hit for rule in ALL_RULES for hit in rule(ctx)]
