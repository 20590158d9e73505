"""secrets apply: create or update the Secrets the chart reads (``existingSecrets`` in values).

Values come from environment variables (below) or the files their ``<VARIABLE>_FILE`` names
(:mod:`kestra_ops.credentials`), or, on a terminal, a no-echo prompt; they stay in memory, are
checked against Kestra's rules before anything is written, and are never rendered:
results name Secrets and keys with created / updated / unchanged (compared by SHA-256). Writes
are a create, or a replace carrying the resourceVersion that was read (a concurrent change is a
Conflict, and nothing after it is written). Each change is logged (names and revisions only).

=====================================  ============================================
variable                               Secret key (names from the merged values)
=====================================  ============================================
KESTRA_OPS_DB_PASSWORD                 existingSecrets.database.name / passwordKey
KESTRA_OPS_MINIO_ACCESS_KEY            existingSecrets.minio.name / accessKeyKey
KESTRA_OPS_MINIO_SECRET_KEY            existingSecrets.minio.name / secretKeyKey
KESTRA_OPS_BASIC_AUTH_PASSWORD         existingSecrets.basicAuth.name / passwordKey
KESTRA_OPS_ENCRYPTION_KEY              existingSecrets.encryption.name / key
=====================================  ============================================

The MinIO key must be Kestra's bucket-scoped key, never MinIO's root credentials: a MinIO access
key equal to KESTRA_OPS_MINIO_ROOT_USER (or MINIO_ROOT_USER, or MinIO's default root user), or a
secret key equal to the matching root password, is refused before anything is read or written
(compared in constant time; the value is never shown).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from kestra_ops import credentials as creds
from kestra_ops.adapters import kube_config
from kestra_ops.credentials import root_key_problems  # noqa: F401 - re-exported
from kestra_ops.errors import Aborted, Conflict, InvalidInput, PermissionDenied
from kestra_ops.results import Recorder, Report, Table
from kestra_ops.settings import Environment

MANAGED_BY = {"app.kubernetes.io/managed-by": "kestra-ops"}
# (existingSecrets section, key field, variable, what it is): the credentials the chart reads
SOURCES = tuple((c.secret[0], c.secret[1], c.variable, c.purpose) for c in creds.IN_SECRETS)
VARIABLES = tuple(s[2] for s in SOURCES)
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass(frozen=True)
class SecretKeySpec:
    secret: str  # Secret name
    key: str  # key inside the Secret's data
    variable: str  # KESTRA_OPS_* variable that supplies the value
    purpose: str  # "database password"
    source: str  # existingSecrets.<section>.<field>


@dataclass
class SecretChange:
    name: str
    action: str  # create | update | unchanged
    keys: dict[str, str]  # key -> created | updated | unchanged
    resource_version: str | None = None  # as read (None: the Secret does not exist)
    written_version: str | None = None
    _desired: dict[str, bytes] = field(default_factory=dict, repr=False)
    _live: dict | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"name": self.name, "action": self.action, "keys": dict(self.keys),
                "resource_version": self.resource_version,
                "written_version": self.written_version}


@dataclass
class SecretsResult:
    env: str
    namespace: str
    dry_run: bool
    secrets: list[SecretChange] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[SecretChange]:
        return [s for s in self.secrets if s.action != "unchanged"]

    def to_dict(self) -> dict:
        return {"env": self.env, "namespace": self.namespace, "dry_run": self.dry_run,
                "changed": bool(self.changes), "written": list(self.written),
                "secrets": [s.to_dict() for s in self.secrets]}


# --------------------------------------------------------------------------- what and from where

def secret_specs(values: Mapping[str, Any]) -> list[SecretKeySpec]:
    """The (Secret, key) pairs the chart reads, from the merged values' ``existingSecrets``."""
    existing = values.get("existingSecrets") if isinstance(values, Mapping) else None
    if not isinstance(existing, Mapping):
        raise InvalidInput("values: existingSecrets is not set (the chart reads its Secrets' "
                           "names from it)")
    specs, seen, problems = [], {}, []
    for section, key_field, variable, purpose in SOURCES:
        entry = existing.get(section)
        where = f"existingSecrets.{section}"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} is not set")
            continue
        name, key = entry.get("name"), entry.get(key_field)
        if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 253:
            problems.append(f"{where}.name {name!r} is not a valid Secret name")
            continue
        if not isinstance(key, str) or not _KEY_RE.match(key) or len(key) > 253:
            problems.append(f"{where}.{key_field} {key!r} is not a valid Secret key")
            continue
        if (name, key) in seen:
            problems.append(f"{where}.{key_field}: {name}/{key} is also "
                            f"{seen[(name, key)]}: each value needs its own key")
            continue
        seen[(name, key)] = f"{where}.{key_field}"
        specs.append(SecretKeySpec(name, key, variable, purpose, f"{where}.{key_field}"))
    if problems:
        raise InvalidInput("values: " + "; ".join(problems))
    return specs


def read_values(specs: list[SecretKeySpec], *, environ: Mapping[str, str] | None = None,
                prompt: Callable[[SecretKeySpec], str] | None = None) -> dict[str, str]:
    """variable -> value, from the credentials resolver (variable, file), else ``prompt``
    (None: no terminal to ask on)."""
    resolver = creds.Resolver(environ=environ)
    by_variable = {c.variable: c for c in creds.IN_SECRETS}
    values = {}
    for spec in specs:
        value = resolver.value(by_variable[spec.variable])
        if value:
            values[spec.variable] = value
    missing = [s for s in specs if s.variable not in values]
    if missing and prompt is None:
        names = ", ".join(f"{s.variable} ({s.purpose})" for s in missing)
        raise InvalidInput(f"not set: {names}; set the variable(s), or run on a terminal to be "
                           "prompted; nothing was written")
    for spec in missing:
        values[spec.variable] = prompt(spec)
    return values


def check_values(specs: list[SecretKeySpec], values: Mapping[str, str],
                 merged: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """Kestra's rules and no MinIO root key, before anything is written; messages never
    include a value."""
    from kestra_ops.values.rules import PASSWORD_RE, USERNAME_RE

    root = root_key_problems(values, environ)
    if root:
        raise InvalidInput("refusing to write the Secrets: " + "; ".join(root) + ": Kestra "
                           "needs a bucket-scoped key (`kestra-ops minio setup` creates one); "
                           "nothing was written")
    problems = []
    for spec in specs:
        value = values.get(spec.variable, "")
        if not value:
            problems.append(f"{spec.variable} is empty")
        elif value != value.strip() or any(c in value for c in "\r\n\0"):
            problems.append(f"{spec.variable} has leading/trailing white space or a line break "
                            "(a pasting mistake?)")
        elif spec.variable == "KESTRA_OPS_BASIC_AUTH_PASSWORD":
            if len(value) > 256 or not PASSWORD_RE.match(value):
                problems.append(f"{spec.variable} does not meet Kestra's basic-auth rule: at "
                                "least 8 characters with an upper-case letter, a lower-case "
                                "letter and a digit, at most 256")
        elif spec.variable == "KESTRA_OPS_ENCRYPTION_KEY":
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = None
            if raw is None or len(raw) != 32:
                problems.append(f"{spec.variable} must be the base64 of 32 bytes "
                                "(e.g. `openssl rand -base64 32`)")
    user, where = basic_auth_username(merged)
    if user is None:
        problems.append("kestra.server.basic-auth.username is not set in values (Kestra needs "
                        "an e-mail address as the basic-auth username)")
    elif "${" not in user and (len(user) > 256 or not USERNAME_RE.match(user)):
        problems.append(f"{where} {user!r} is not an e-mail address (Kestra's basic-auth rule)")
    if problems:
        raise InvalidInput("refusing to write the Secrets: " + "; ".join(problems))


def basic_auth_username(merged: Mapping[str, Any]) -> tuple[str | None, str]:
    server = ((merged.get("kestra") or {}).get("server") or {}) if isinstance(merged, Mapping) \
        else {}
    for key in ("basic-auth", "basicAuth"):
        section = server.get(key) if isinstance(server, Mapping) else None
        if isinstance(section, Mapping) and section.get("username") not in (None, ""):
            return str(section["username"]), f"kestra.server.{key}.username"
    return None, "kestra.server.basic-auth.username"


# --------------------------------------------------------------------------- compare and write

def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def plan_changes(kube, namespace: str, specs: list[SecretKeySpec],
                 values: Mapping[str, str]) -> list[SecretChange]:
    """Read each Secret and compare key by key (by hash); nothing is written."""
    by_name: dict[str, dict[str, bytes]] = {}
    for spec in specs:
        by_name.setdefault(spec.secret, {})[spec.key] = values[spec.variable].encode("utf-8")
    changes = []
    for name, desired in by_name.items():
        body = kube_config.read_secret(kube, namespace, name)
        if body is None:
            changes.append(SecretChange(name, "create", dict.fromkeys(desired, "created"),
                                        _desired=desired))
            continue
        data = body.get("data") or {}
        keys = {}
        for key, value in desired.items():
            current = kube_config.decode(data.get(key))
            if current is None:
                keys[key] = "created"
            else:
                keys[key] = "unchanged" if hmac.compare_digest(_digest(current), _digest(value)) \
                    else "updated"
        action = "unchanged" if all(v == "unchanged" for v in keys.values()) else "update"
        changes.append(SecretChange(name, action, keys, body["metadata"].get("resourceVersion"),
                                    _desired=desired, _live=body))
    return changes


def check_write_permissions(kube, namespace: str, changes: list[SecretChange]) -> None:
    from kestra_ops.workflows.deploy.preflight import Permission, missing_permissions

    verbs = sorted({"create" if c.action == "create" else "update" for c in changes})
    missing = missing_permissions(kube, namespace, [Permission(v, "secrets") for v in verbs])
    if missing:
        raise PermissionDenied(f"{'; '.join(missing)}: nothing was written",
                               hint="grant the deploying account these verbs on secrets in the "
                                    "namespace (kestra-ops preflight lists every permission)")


def write_change(kube, namespace: str, change: SecretChange) -> str:
    """Create, or replace with the resourceVersion read; returns the written resourceVersion."""
    if change.action == "create":
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": change.name, "namespace": namespace,
                             "labels": dict(MANAGED_BY)},
                "data": {k: kube_config.encode(v) for k, v in change._desired.items()}}
        return kube_config.create_secret(kube, namespace, body)["metadata"]["resourceVersion"]
    body = dict(change._live or {})
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    metadata["labels"] = {**(metadata.get("labels") or {}), **MANAGED_BY}
    body.update(apiVersion="v1", kind="Secret", metadata=metadata,
                data={**(body.get("data") or {}),
                      **{k: kube_config.encode(v) for k, v in change._desired.items()}})
    replaced = kube_config.replace_secret(kube, namespace, change.name, body)
    return replaced["metadata"]["resourceVersion"]


def apply_secrets(env: Environment, *, kube=None, environ: Mapping[str, str] | None = None,
                  prompt: Callable[[SecretKeySpec], str] | None = None, dry_run: bool = False,
                  confirm: Callable[[Report], bool] | None = None, progress=None) -> Report:
    """Plan, then (unless ``dry_run``, and when ``confirm`` agrees, shown the plan as a Report)
    write the changed Secrets. Returns the Report (JSON: env, namespace, dry_run, changed,
    written, secrets).

    Raises InvalidInput before contacting the cluster when a value is missing or breaks a rule,
    PermissionDenied before any write when the caller may not write Secrets, Conflict when a
    Secret changed since it was read (nothing after it is written), Aborted when declined.
    """
    from kestra_ops.audit import log_change
    from kestra_ops.values.merge import load_layers

    merged = load_layers(env.values_paths).plain
    specs = secret_specs(merged)
    values = read_values(specs, environ=environ, prompt=prompt)
    check_values(specs, values, merged, environ)
    owned = kube is None
    if owned:
        from kestra_ops.wiring import kube as connect

        kube = connect(env)
    try:
        result = SecretsResult(env.name, env.namespace, dry_run,
                               plan_changes(kube, env.namespace, specs, values))
        if dry_run or not result.changes:
            return to_report(result)
        if confirm is not None and not confirm(to_report(result, plan=True)):
            raise Aborted("declined: no Secret was written")
        check_write_permissions(kube, env.namespace, result.changes)
        report = Report("secrets apply", env.name)
        rec = Recorder(report, progress)
        for change in result.changes:
            try:
                with rec.step(f"{change.action} secret {change.name}"):
                    change.written_version = write_change(kube, env.namespace, change)
            except Conflict:
                done = ", ".join(result.written) or "none"
                raise Conflict(f"secret {change.name} changed since it was read (resourceVersion "
                               f"{change.resource_version or 'none: it did not exist'}); it and "
                               f"the Secrets after it were not written (already written: {done})",
                               hint="run `kestra-ops secrets apply` again to compare with the "
                                    "current Secrets") from None
            result.written.append(change.name)
            log_change(env.root, action=f"secret {change.action}", env=env.name,
                       target=f"secret {env.namespace}/{change.name}",
                       before=change.resource_version, after=change.written_version,
                       keys=dict(change.keys))
        return to_report(result, steps=report.steps)
    finally:
        if owned:
            kube.close()


def to_report(result: SecretsResult, *, plan: bool = False, steps=None) -> Report:
    """Names, keys and actions only (values never leave the workflow)."""
    counts = {a: sum(1 for s in result.secrets if s.action == a)
              for a in ("create", "update", "unchanged")}
    written = not plan and not result.dry_run and bool(result.changes)
    if written:
        summary = (f"{counts['create']} created, {counts['update']} updated, "
                   f"{counts['unchanged']} unchanged")
    else:
        summary = (f"{counts['create']} to create, {counts['update']} to update, "
                   f"{counts['unchanged']} unchanged")
        if result.dry_run:
            summary += " (dry run: nothing written)"
    rows = [[f"would {c.action}" if (plan or result.dry_run) and c.action != "unchanged"
             else c.action, c.name, ", ".join(f"{k}: {v}" for k, v in c.keys.items())]
            for c in result.secrets]
    report = Report("secrets apply", result.env, title=f"secrets apply {result.env} (namespace "
                    f"{result.namespace})", steps=list(steps or []),
                    tables=[Table(["ACTION", "SECRET", "KEYS"], rows)],
                    outcome="planned" if plan or result.dry_run or not result.changes
                    else "applied",
                    message=f"secrets apply {result.env} (namespace {result.namespace}): "
                            f"{summary}",
                    data=result.to_dict())
    return report
