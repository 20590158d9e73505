"""Sealed Secrets in a backup set: ``secrets.age``, the env's Secrets encrypted with age.

Which Secrets: every Secret the chart reads, named by the merged values' ``existingSecrets``
(:func:`kestra_ops.workflows.secrets.secret_specs`), each taken whole (type and every data key),
plus the backup CronJob's ``backup.existingSecret`` when ``backup.enabled``. Among them Kestra's
encryption key (``kestra.encryption.secret-key``: SECRET inputs/outputs cannot be used without
it and values encrypted with it cannot be read without it; kestra-io/docs
content/docs/configuration/index.md, "Encryption"), so a set without it cannot bring such data
back.

They are serialized in memory as JSON (:data:`FORMAT_VERSION`)::

    {"version": 1, "namespace": "...", "secrets": {"<name>": {"type": "Opaque",
                                                  "data": {"<key>": "<base64>"}}}}

and encrypted with age (pyrage) to ``backup.recipients`` of kestra-ops.yaml (public keys only:
``age1...``, ``ssh-ed25519 ...``, ``ssh-rsa ...``); the private key is never in the cluster nor
the bucket. The plaintext never touches disk, logs, reports or exceptions. The manifest's
``secrets`` entry names Secrets and keys, never a value::

    {"sealed": true, "recipients": [...], "secrets": [names], "keys": {name: [keys]},
     "size": N, "sha256": "..."}  |  {"sealed": false, "reason": "..."}

Identities and recipients: :mod:`kestra_ops.workflows.backup.age_keys`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kestra_ops.errors import Conflict, InvalidInput, NotFound, OperationFailed
from kestra_ops.workflows.backup import sets as bs
from kestra_ops.workflows.backup.age_keys import load_identities, recipients

FORMAT_VERSION = 1
MAX_SEALED_BYTES = 8 * 1024 * 1024  # Kubernetes caps one Secret at 1 MiB; a few of them
NO_RECIPIENTS = "no backup.recipients in kestra-ops.yaml"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kestra-ops"}


@dataclass(frozen=True)
class SealedSecret:
    """One Secret as sealed: its type and data (raw bytes; never shown: not in the repr)."""
    name: str
    type: str
    data: dict[str, bytes] = field(repr=False)


# --------------------------------------------------------------------------- what is sealed

def secret_names(values: Mapping[str, Any]) -> list[str]:
    """The Secrets the chart reads (existingSecrets) and, when the backup CronJob is enabled,
    its ``backup.existingSecret``; each name once, in that order."""
    from kestra_ops.workflows.secrets import secret_specs

    names = list(dict.fromkeys(spec.secret for spec in secret_specs(values)))
    backup = values.get("backup") if isinstance(values, Mapping) else None
    if isinstance(backup, Mapping) and backup.get("enabled") is True:
        extra = backup.get("existingSecret")
        if not isinstance(extra, str) or not extra.strip():
            raise InvalidInput("values: backup.enabled is true but backup.existingSecret is not "
                               "a Secret name")
        if extra not in names:
            names.append(extra)
    return names


def read_secrets(kube, namespace: str, names: list[str]) -> dict[str, SealedSecret]:
    """Each named Secret whole, from the cluster; a missing one is NotFound (nothing sealed)."""
    from kestra_ops.adapters import kube_config

    out: dict[str, SealedSecret] = {}
    for name in names:
        body = kube_config.read_secret(kube, namespace, name)
        if body is None:
            raise NotFound(f"secret {name} not found in namespace {namespace} (the chart reads "
                           "it): nothing sealed", hint="create it with: kestra-ops secrets apply")
        data = {}
        for key, encoded in (body.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(encoded or "", validate=True)
            except (binascii.Error, ValueError):
                raise OperationFailed(f"secret {name}: key {key} is not base64 as the API "
                                      "returned it") from None
        out[name] = SealedSecret(name, str(body.get("type") or "Opaque"), data)
    return out


def serialize(namespace: str, secrets: Mapping[str, SealedSecret]) -> bytes:
    return json.dumps({"version": FORMAT_VERSION, "namespace": namespace, "secrets": {
        name: {"type": s.type, "data": {k: base64.b64encode(v).decode("ascii")
                                        for k, v in sorted(s.data.items())}}
        for name, s in secrets.items()}}, sort_keys=True).encode()


# --------------------------------------------------------------------------- seal / open

def seal_env(env, kube, storage, bucket: str, set_name: str) -> tuple[dict, int]:
    """Seal ``env``'s Secrets into the set: the manifest's ``secrets`` entry and the bytes
    stored (0: not sealed, no recipients). ``secrets.age`` is added to the manifest's
    artefacts by the caller."""
    import pyrage

    from kestra_ops.values.merge import load_layers

    if not env.backup_recipients:
        return {"sealed": False, "reason": NO_RECIPIENTS}, 0
    to = recipients(env.backup_recipients)
    names = secret_names(load_layers(env.values_paths).plain)
    secrets = read_secrets(kube, env.namespace, names)
    try:
        sealed = pyrage.encrypt(serialize(env.namespace, secrets), to)
    except pyrage.EncryptError:
        raise OperationFailed("age encryption of the Secrets failed") from None
    bs.put_bytes(storage, bucket, bs.key(env.name, set_name, bs.SECRETS), sealed)
    return {"sealed": True, "recipients": [r.strip() for r in env.backup_recipients],
            "secrets": list(secrets), "keys": {n: sorted(s.data) for n, s in secrets.items()},
            "size": len(sealed), "sha256": hashlib.sha256(sealed).hexdigest()}, len(sealed)


def open_sealed(data: bytes, identities: list, *, where: str = bs.SECRETS
                ) -> tuple[str, dict[str, SealedSecret]]:
    """(namespace, secrets) from sealed bytes; OperationFailed naming ``where`` when the
    identities cannot open it or what it holds is not a sealed-secrets document."""
    import pyrage

    try:
        plain = pyrage.decrypt(data, identities)
    except pyrage.DecryptError as err:
        why = ("the identity is not one of its recipients" if "no matching keys"
               in str(err).lower() else "it is damaged or truncated")
        raise OperationFailed(f"{where}: cannot be opened: {why}") from None
    bad = OperationFailed(f"{where}: opened, but it does not hold sealed Secrets (format "
                          f"version {FORMAT_VERSION})")
    try:
        doc = json.loads(plain)
    except ValueError:
        raise bad from None
    if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION or not isinstance(
            doc.get("secrets"), dict) or not isinstance(doc.get("namespace"), str):
        raise bad
    out = {}
    for name, entry in doc["secrets"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) \
                or not isinstance(entry.get("data"), dict):
            raise bad
        try:
            data_ = {str(k): base64.b64decode(v, validate=True)
                     for k, v in entry["data"].items()}
        except (binascii.Error, ValueError, TypeError):
            raise bad from None
        out[str(name)] = SealedSecret(str(name), entry["type"], data_)
    return doc["namespace"], out


def check_against(entry: Mapping, secrets: Mapping[str, SealedSecret], *,
                  where: str = bs.SECRETS) -> None:
    """The opened Secrets and their keys are those the manifest names."""
    names, keys = list(entry.get("secrets") or []), entry.get("keys") or {}
    if sorted(secrets) != sorted(names):
        raise OperationFailed(f"{where}: holds Secrets {', '.join(sorted(secrets)) or 'none'}, "
                              f"the manifest names {', '.join(sorted(names)) or 'none'}")
    for name, s in secrets.items():
        if sorted(s.data) != sorted(keys.get(name) or []):
            raise OperationFailed(f"{where}: secret {name} holds other keys than the manifest "
                                  "names")


def read_sealed(storage, bucket: str, env_name: str, s: bs.BackupSet) -> bytes:
    """secrets.age's bytes, checked against the manifest (size cap, size, sha256)."""
    entry = (s.manifest or {}).get("secrets") or {}
    expected = (s.manifest or {}).get("artefacts", {}).get(bs.SECRETS) or entry
    listed = s.objects.get(bs.SECRETS)
    if listed is None:
        raise NotFound(f"backup set {s.name}: {bs.SECRETS} is missing from the bucket")
    if listed > MAX_SEALED_BYTES:
        raise OperationFailed(f"backup set {s.name}: {bs.SECRETS} is {listed:,} bytes, more "
                              f"than a sealed-secrets file holds ({MAX_SEALED_BYTES:,})")
    data = bs.read_small(storage, bucket, bs.key(env_name, s.name, bs.SECRETS))
    if len(data) != expected.get("size") or not hmac.compare_digest(
            hashlib.sha256(data).hexdigest(), str(expected.get("sha256"))):
        raise OperationFailed(f"backup set {s.name}: {bs.SECRETS} does not match its manifest")
    return data


def unseal(storage, bucket: str, env_name: str, set_name: str, identity_path: str | Path
           ) -> dict[str, SealedSecret]:
    """The Secrets sealed in set ``set_name`` (or ``latest``) of ``env_name``, opened in
    memory with the identity file; raises (one line) when the set has none, the file does not
    match its manifest, or the identity cannot open it."""
    identities, _warnings = load_identities(identity_path)
    s = bs.get_set(storage, bucket, env_name, set_name)
    entry = s.manifest.get("secrets") or {}
    if not entry.get("sealed"):
        raise NotFound(f"backup set {s.name} of {env_name} holds no sealed Secrets: "
                       f"{entry.get('reason') or 'taken without them'}")
    _ns, secrets = open_sealed(read_sealed(storage, bucket, env_name, s), identities)
    check_against(entry, secrets)
    return secrets


# --------------------------------------------------------------------------- put them back

def create_secrets(kube, namespace: str, secrets: Mapping[str, SealedSecret], *,
                   field_manager: str = "kestra-ops") -> list[str]:
    """Create the Secrets in ``namespace``; returns the names created (a Secret that exists
    with the same type and data is left as it is). Refuses (Conflict, one line, before any
    write) when an existing Secret's type or data differs."""
    from kestra_ops.adapters import kube_config

    missing, differ = [], []
    for name, s in secrets.items():
        live = kube_config.read_secret(kube, namespace, name)
        if live is None:
            missing.append(s)
        elif not _same(live, s):
            differ.append(name)
    if differ:
        raise Conflict(f"secret(s) {', '.join(differ)} exist in namespace {namespace} with other "
                       "data: refusing to overwrite them; nothing was written",
                       hint="delete them first if the backup's values must win")
    created = []
    for s in missing:
        body = {"apiVersion": "v1", "kind": "Secret", "type": s.type,
                "metadata": {"name": s.name, "namespace": namespace,
                             "labels": dict(MANAGED_BY)},
                "data": {k: kube_config.encode(v) for k, v in s.data.items()}}
        kube_config.create_secret(kube, namespace, body, field_manager=field_manager)
        created.append(s.name)
    return created


def _same(live: Mapping, s: SealedSecret) -> bool:
    from kestra_ops.adapters import kube_config

    data = live.get("data") or {}
    if str(live.get("type") or "Opaque") != s.type or set(data) != set(s.data):
        return False
    return all(hmac.compare_digest(kube_config.decode(data[k]) or b"", v)
               for k, v in s.data.items())


# --------------------------------------------------------------------------- verify

def identities_for(report, identity_path) -> list | None:
    """The identities of ``--identity`` (None without it); its warnings go to ``report``."""
    if identity_path is None:
        return None
    identities, warnings = load_identities(identity_path)
    report.warnings += warnings
    return identities


def verify_artefact(storage, bucket: str, env_name: str, s: bs.BackupSet, identities,
                    identity_path) -> tuple[bool, str]:
    """verify's check of secrets.age: size and sha256; with identities, opened in memory and
    its names and keys compared with the manifest. (ok, one-line detail), never a value."""
    try:
        data = read_sealed(storage, bucket, env_name, s)
    except (OperationFailed, NotFound) as err:
        return False, str(err).replace(f"backup set {s.name}: {bs.SECRETS} ", "")
    detail = f"{len(data)} bytes, sha256 ok"
    if identities is None:
        return True, f"{detail}; sealed secrets not opened (no --identity)"
    entry = s.manifest.get("secrets") or {}
    try:
        _ns, secrets = open_sealed(data, identities)
        check_against(entry, secrets)
    except OperationFailed as err:
        return False, f"{str(err).removeprefix(bs.SECRETS + ': ')} (identity {identity_path})"
    return True, (f"{detail}; opened with {identity_path}: {len(secrets)} Secret(s) "
                  f"({', '.join(secrets)}), names and keys match the manifest")


def manifest_problem(s: bs.BackupSet) -> str | None:
    """A manifest that says the Secrets are sealed but lists no secrets.age artefact (so that
    nothing would check it): verify fails it."""
    manifest = s.manifest or {}
    entry = manifest.get("secrets")
    if isinstance(entry, Mapping) and entry.get("sealed") and bs.SECRETS not in (
            manifest.get("artefacts") or {}):
        return f"the manifest says the Secrets are sealed but lists no {bs.SECRETS}"
    return None


def unsealed_warning(s: bs.BackupSet) -> str | None:
    """verify's flag for a set without sealed Secrets (None when it has them)."""
    manifest = s.manifest or {}
    entry = manifest.get("secrets")
    if isinstance(entry, Mapping) and entry.get("sealed"):
        return None
    if isinstance(entry, Mapping):
        why = entry.get("reason") or "not sealed"
    elif "secrets" in (manifest.get("included") or []):
        why = "the manifest has no secrets entry"
    else:
        why = f"not in this set (it included {', '.join(s.included) or 'nothing'})"
    return (f"secrets not included: {why}; restoring it needs the env's Secrets (Kestra's "
            "encryption key among them) from elsewhere")


def check_identity(report, storage, bucket: str, env_name: str, s: bs.BackupSet,
                   identity_path) -> None:
    """restore/drill ``--identity``: the set's sealed Secrets must open with it (in memory,
    before any change; OperationFailed otherwise); they are not applied here."""
    if identity_path is None:
        return
    identities = identities_for(report, identity_path)
    warning = unsealed_warning(s)
    if warning:
        report.warnings.append(warning)
        return
    ok, detail = verify_artefact(storage, bucket, env_name, s, identities, identity_path)
    if not ok:
        raise OperationFailed(f"backup set {s.name}: {bs.SECRETS}: {detail}; nothing changed")
    report.details.append(f"{bs.SECRETS}: {detail} (checked, not applied)")

