"""The one credentials resolver: every credential kestra-ops uses is declared here once and found
by :class:`Resolver` in :data:`SOURCES`, in order; the first source holding it wins:

1. a flag (``given``), then its variable (``KESTRA_OPS_DB_PASSWORD``...);
2. a file named by ``<VARIABLE>_FILE`` (``KESTRA_OPS_DB_PASSWORD_FILE=/run/secrets/db``): the
   whole file, one trailing newline dropped; for mounted secrets (Kubernetes, Docker, an agent);
   a named file that cannot be read is an error (exit 2), never skipped;
3. the values, for the one credential that is not secret (the basic-auth username,
   ``kestra.server.basic-auth.username``; a ``${...}`` placeholder is not a value);
4. the Kubernetes Secret the values name in ``existingSecrets`` (the chart reads the same one),
   only when the caller gives a cluster connection.

A later source (Vault, external-secrets) is one more class in :data:`SOURCES`; nothing else
changes. Values never leave this module in a message: errors and reasons name variables, files
and Secrets only. The rules on what a credential may be (no MinIO root key where Kestra's
bucket-scoped key belongs) are here too.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any, Mapping

from kestra_ops.errors import ConfigError, InvalidInput, KestraOpsError, NotFound


@dataclass(frozen=True)
class Credential:
    variable: str  # KESTRA_OPS_*: the flag's variable, and the prefix of its _FILE variable
    purpose: str  # "database password"
    secret: tuple[str, str] | None = None  # (existingSecrets section, key field) in values
    default_secret: tuple[str, str] | None = None  # (Secret, key) when values name none
    values_paths: tuple[tuple[str, ...], ...] = ()  # where values carry it (never a secret)

    @property
    def file_variable(self) -> str:
        return f"{self.variable}_FILE"


DB_PASSWORD = Credential("KESTRA_OPS_DB_PASSWORD", "database password",
                         ("database", "passwordKey"))
MINIO_ACCESS_KEY = Credential("KESTRA_OPS_MINIO_ACCESS_KEY", "MinIO access key",
                              ("minio", "accessKeyKey"))
MINIO_SECRET_KEY = Credential("KESTRA_OPS_MINIO_SECRET_KEY", "MinIO secret key",
                              ("minio", "secretKeyKey"))
BASIC_AUTH_PASSWORD = Credential("KESTRA_OPS_BASIC_AUTH_PASSWORD", "basic-auth password",
                                 ("basicAuth", "passwordKey"),
                                 default_secret=("kestra-basic-auth", "password"))
ENCRYPTION_KEY = Credential("KESTRA_OPS_ENCRYPTION_KEY", "encryption key", ("encryption", "key"))
BASIC_AUTH_USERNAME = Credential(
    "KESTRA_OPS_BASIC_AUTH_USERNAME", "basic-auth username",
    values_paths=(("kestra", "server", "basic-auth", "username"),
                  ("kestra", "server", "basicAuth", "username")))
# the backup destination's own key (backup.bucket): the CronJob's may write but not delete;
# the operator's (prune, migrate-location) may delete. Variables and files only (the CronJob
# gets them from backup.existingSecret through envFrom).
BACKUP_ACCESS_KEY = Credential("KESTRA_OPS_BACKUP_ACCESS_KEY", "backup access key")
BACKUP_SECRET_KEY = Credential("KESTRA_OPS_BACKUP_SECRET_KEY", "backup secret key")
MINIO_ROOT_USER = Credential("KESTRA_OPS_MINIO_ROOT_USER", "MinIO root user")
MINIO_ROOT_PASSWORD = Credential("KESTRA_OPS_MINIO_ROOT_PASSWORD", "MinIO root password")
# what `secrets apply` writes into the chart's Secrets, in this order
IN_SECRETS = (DB_PASSWORD, MINIO_ACCESS_KEY, MINIO_SECRET_KEY, BASIC_AUTH_PASSWORD,
              ENCRYPTION_KEY)
DATABASE_URL_VAR = "KESTRA_OPS_DATABASE_URL"  # a postgresql:// URL (its password optional)


@dataclass(frozen=True)
class Found:
    value: str | None
    source: str | None = None  # "flag", "environment", "file PATH", "values", "secret NAME"
    why: str = ""  # when not found: why no source had it (names only, never a value)


class NotHere(Exception):
    """A source's reason for not holding a credential (said when no other source has it)."""


class Resolver:
    """Finds credentials (see the module doc). ``values`` are the env's merged values and
    ``kube`` a cluster connection, each given as is or as a function called on first use;
    without ``kube`` no Secret is read."""

    def __init__(self, *, environ: Mapping[str, str] | None = None, values=None, kube=None,
                 namespace: str | None = None, sources=None):
        self.environ = os.environ if environ is None else environ
        self._values, self._kube = values, kube
        self.namespace = namespace
        self.sources = SOURCES if sources is None else sources

    @property
    def values(self) -> Mapping[str, Any]:
        if callable(self._values):
            self._values = self._values()
        return self._values if isinstance(self._values, Mapping) else {}

    @property
    def kube(self):
        if callable(self._kube) and not hasattr(self._kube, "core"):
            self._kube = self._kube()
        return self._kube

    @property
    def has_kube(self) -> bool:
        return self._kube is not None

    def get(self, cred: Credential, given: str | None = None) -> Found:
        if given:
            return Found(given, "flag")
        why = ""
        for source in self.sources:
            try:
                hit = source.lookup(cred, self)
            except NotHere as reason:
                why = str(reason)
                continue
            except ConfigError:
                raise
            except KestraOpsError as err:  # a Secret that cannot be read: say why
                why = f"{cred.variable} is not set and {err}"
                continue
            if hit is not None:
                return Found(hit[0], hit[1])
        return Found(None, None, why or f"{cred.variable} is not set")

    def value(self, cred: Credential) -> str | None:
        return self.get(cred).value

    def unset(self, *creds: Credential) -> list[str]:
        """The variables of ``creds`` that no source holds."""
        return [c.variable for c in creds if not self.value(c)]


# --------------------------------------------------------------------------- sources

class Variable:
    def lookup(self, cred: Credential, r: Resolver):
        value = r.environ.get(cred.variable)
        return (value, "environment") if value else None


class File:
    def lookup(self, cred: Credential, r: Resolver):
        path = r.environ.get(cred.file_variable)
        if not path:
            return None
        try:
            with open(path, encoding="utf-8") as fh:
                value = fh.read()
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"{cred.file_variable}: cannot read {path}: {reason}") from None
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
        return (value, f"file {path}") if value else None


class ValuesField:
    def lookup(self, cred: Credential, r: Resolver):
        if not cred.values_paths:
            return None
        for path in cred.values_paths:
            value = _dig(r.values, path)
            if isinstance(value, str) and "${" in value:
                raise NotHere(f"{cred.variable} is not set and {'.'.join(path)} in values is a "
                              "placeholder")
            if isinstance(value, str) and value:
                return value, "values"
        raise NotHere(f"{cred.variable} is not set and values carry no "
                      f"{'.'.join(cred.values_paths[0])}")


class KubeSecret:
    def lookup(self, cred: Credential, r: Resolver):
        if not r.has_kube or (cred.secret is None and cred.default_secret is None):
            return None
        name, key = secret_location(cred, r.values)
        if name is None:
            return None
        from kestra_ops.adapters.kube_config import read_secret

        body = read_secret(r.kube, r.namespace, name)
        if body is None:
            raise NotFound(f"secret {name}: not found")
        encoded = (body.get("data") or {}).get(key)
        if encoded is None:
            where = f" (existingSecrets.{'.'.join(cred.secret)})" if cred.secret else ""
            raise NotFound(f"secret {name} has no key {key!r}{where}")
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8"), f"secret {name}"
        except (binascii.Error, ValueError):
            raise InvalidInput(f"secret {name}: key {key!r} is not base64 of UTF-8 text"
                               ) from None


# the order in which a credential is looked for; a new source (Vault...) goes here
SOURCES: tuple = (Variable(), File(), ValuesField(), KubeSecret())


def secret_location(cred: Credential, values: Mapping[str, Any]
                    ) -> tuple[str | None, str | None]:
    """(Secret, key) holding ``cred``: named in values' existingSecrets, else the default."""
    default = cred.default_secret or (None, None)
    if cred.secret is None:
        return default
    entry = _dig(values, ("existingSecrets", cred.secret[0]))
    entry = entry if isinstance(entry, Mapping) else {}
    return (str(entry.get("name") or default[0] or "") or None,
            str(entry.get(cred.secret[1]) or default[1] or "") or None)


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


# --------------------------------------------------------------------------- composed answers

def minio_key(resolver: Resolver) -> tuple[str | None, str | None, str]:
    """Kestra's bucket-scoped key: (access key, secret key, "") or (None, None, why not)."""
    unset = resolver.unset(MINIO_ACCESS_KEY, MINIO_SECRET_KEY)
    if unset:
        return None, None, f"no MinIO credentials ({' and '.join(unset)} not set)"
    return resolver.value(MINIO_ACCESS_KEY), resolver.value(MINIO_SECRET_KEY), ""


BACKUP_FALLBACK_WARNING = (
    "no backup key (KESTRA_OPS_BACKUP_ACCESS_KEY / KESTRA_OPS_BACKUP_SECRET_KEY not set): the "
    "backups are written with Kestra's own MinIO key, so whoever holds that key (Kestra's pod) "
    "can reach and delete them; give the backups a key of their own")


def backup_key(resolver: Resolver) -> tuple[str | None, str | None, str, str]:
    """The backup destination's key: (access key, secret key, warning, why not).

    Both backup variables (or their files): that key, no warning. Neither: Kestra's MinIO key,
    with :data:`BACKUP_FALLBACK_WARNING` (backups then share Kestra's blast radius). Only one
    of the two: an error (``why``), never a silent fallback: a half-configured key is a
    mistake to fix, not a reason to use Kestra's."""
    access, secret = resolver.value(BACKUP_ACCESS_KEY), resolver.value(BACKUP_SECRET_KEY)
    if access and secret:
        return access, secret, "", ""
    if access or secret:
        missing = BACKUP_SECRET_KEY if access else BACKUP_ACCESS_KEY
        given = BACKUP_ACCESS_KEY if access else BACKUP_SECRET_KEY
        return None, None, "", (f"{missing.variable} is not set ({given.variable} is): the "
                                "backup key needs both")
    access, secret, why = minio_key(resolver)
    if why:
        return None, None, "", (f"no backup key ({BACKUP_ACCESS_KEY.variable} / "
                                f"{BACKUP_SECRET_KEY.variable} not set) and {why}")
    return access, secret, BACKUP_FALLBACK_WARNING, ""


def minio_root(resolver: Resolver) -> tuple[str | None, str | None, str]:
    """MinIO's root credentials (minio setup only, never written to a Secret): (user, password,
    "") or (None, None, why not). The bucket-key variables are never taken as root: when only
    they are set, ``why`` explains the rename."""
    user, password = resolver.value(MINIO_ROOT_USER), resolver.value(MINIO_ROOT_PASSWORD)
    if user and password:
        return user, password, ""
    unset = " and ".join(resolver.unset(MINIO_ROOT_USER, MINIO_ROOT_PASSWORD))
    if not user and not password and (resolver.value(MINIO_ACCESS_KEY) or
                                      resolver.value(MINIO_SECRET_KEY)):
        return None, None, (f"{unset} not set: the MinIO root credentials now have their own "
                            f"variables; {MINIO_ACCESS_KEY.variable} / "
                            f"{MINIO_SECRET_KEY.variable} name only Kestra's bucket-scoped key "
                            "and are never used as root")
    return None, None, f"{unset} not set (MinIO's root credentials)"


def database_url(given: str | None, *, environ: Mapping[str, str] | None = None,
                 what: str = "--database-url"):
    """The database to dump or compare: ``given`` (a flag) or KESTRA_OPS_DATABASE_URL; a
    password missing from the URL is the database password credential (variable or file)."""
    from kestra_ops.adapters.postgres import DatabaseURL

    resolver = Resolver(environ=environ)
    text = given or resolver.environ.get(DATABASE_URL_VAR)
    if not text:
        raise InvalidInput(f"no database: pass {what} or set {DATABASE_URL_VAR}",
                           hint="e.g. postgresql://kestra@kestra-postgres:5432/kestra with the "
                                "password in PGPASSWORD or the URL")
    try:
        url = DatabaseURL.parse(text)
    except ValueError:  # urlsplit: "Invalid IPv6 URL" and the like; the URL is never echoed
        raise InvalidInput(f"database URL ({what} or {DATABASE_URL_VAR}): not a URL; expected "
                           "postgresql://user[:password]@host[:port]/db") from None
    if url.password is None:
        password = resolver.value(DB_PASSWORD)
        if password:
            url = DatabaseURL(url.url, password)
    return url


# --------------------------------------------------------------------------- rules

# MinIO's root credentials, which must never land in the env's Secret: what is compared, and
# where the root value comes from; "minioadmin" is MinIO's default root user and password
ROOT_SOURCES = ((MINIO_ACCESS_KEY, "user", (MINIO_ROOT_USER, "MINIO_ROOT_USER")),
                (MINIO_SECRET_KEY, "password", (MINIO_ROOT_PASSWORD, "MINIO_ROOT_PASSWORD")))
MINIO_DEFAULT_ROOT = "minioadmin"


def same_secret(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets; False when either is empty or unset."""
    import hmac  # here: hmac loads OpenSSL (~4 ms) for every command that builds a client

    return bool(a) and bool(b) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def root_key_problems(values: Mapping[str, str],
                      environ: Mapping[str, str] | None = None) -> list[str]:
    """The MinIO values (by variable) that are root credentials: one message each, naming the
    variable it equals, never the value."""
    resolver = Resolver(environ=environ)
    problems = []
    for cred, what, roots in ROOT_SOURCES:
        value = values.get(cred.variable)
        if not value:
            continue
        same_as = [name for name, root in _root_values(resolver, roots)
                   if same_secret(value, root)]
        if same_as:
            problems.append(f"{cred.variable} is the MinIO root {what} ({same_as[0]})")
        elif same_secret(value, MINIO_DEFAULT_ROOT):
            problems.append(f"{cred.variable} is MinIO's default root {what}")
    return problems


def _root_values(resolver: Resolver, roots) -> list[tuple[str, str | None]]:
    ours, minio_own = roots
    return [(ours.variable, resolver.value(ours)), (minio_own, resolver.environ.get(minio_own))]

