"""The environment profile: flags > KESTRA_OPS_* variables > kestra-ops.yaml > defaults.

``kestra-ops.yaml`` (found in the working directory or a parent, or named by ``--config`` /
``KESTRA_OPS_CONFIG``) has one section per environment::

    defaults: {namespace: hyperplane-kestra, release: kestra, chart: charts/kestra}
    environments:
      production:
        context: prod-cluster        # unset: the kubeconfig's current context
        kubeconfig: ~/.kube/prod     # unset: KUBECONFIG, else ~/.kube/config
        kestra_url: https://kestra.example.com/
        minio: {endpoint: minio.hyperplane-minio.svc.cluster.local:9000, bucket: kestra-production,
                versioning: true, lifecycle_days: 30,   # optional, minio setup
                region: us-east-1, path_style: true, ca_file: certs/s3-ca.pem}  # any S3 store:
                                                    # kestra_ops/storage_options.py
        values: [values/base.yaml, values/production.yaml]
        backup: {bucket: kestra-production-backups,   # default kestra-<env>-backups
                 endpoint: ..., secure: ...,        # default: minio.endpoint / minio.secure
                 region: ..., path_style: ..., ca_file: ...,  # default: minio's, same endpoint
                 recipients: [age1...],             # public keys the Secrets are sealed to
                 lock_days: 30,                     # minio setup: object-lock retention
                 include_executions: false}         # backup run: execution files too
        upgrade: {requires: staging,                # upgrade run: this env must run the target
                                                    # first (default: staging for production)
                  backup_max_age: 60m,              # a verified set this fresh guards an
                                                    # irreversible step
                  job_timeout: 30m,                 # each migration Job
                  job_annotations: {}}              # extra pod annotations of migration Jobs

Credentials never live here: they come from environment variables, files or Kubernetes Secrets,
and a config file that carries one is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from collections.abc import Mapping

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any

from kestra_ops.defaults import (CONFIG_NAME, DEFAULT_CHART, DEFAULT_ENVS,
                                 DEFAULT_NAMESPACE, DEFAULT_RELEASE)
from kestra_ops.config_schema import check_config, check_setting
from kestra_ops.errors import ConfigError
from kestra_ops.setting_values import file_setting, flag, whole_days

# Settable per environment; each has a KESTRA_OPS_<NAME> variable.
FIELDS = ("namespace", "release", "context", "kubeconfig", "kestra_url", "minio_endpoint",
          "minio_bucket", "minio_secure", "chart", "minio_versioning", "minio_lifecycle_days",
          "minio_region", "minio_path_style", "minio_ca_file",
          "backup_bucket", "backup_endpoint", "backup_secure", "backup_recipients",
          "backup_region", "backup_path_style", "backup_ca_file",
          "backup_lock_days", "backup_include_executions", "upgrade_requires",
          "upgrade_backup_max_age", "upgrade_job_timeout", "upgrade_job_annotations")


@dataclass(frozen=True)
class Environment:
    """Everything kestra-ops needs to know about one environment (never a credential)."""

    name: str
    root: Path
    namespace: str = DEFAULT_NAMESPACE
    release: str = DEFAULT_RELEASE
    context: str | None = None
    kestra_url: str | None = None
    minio_endpoint: str | None = None
    minio_bucket: str | None = None
    minio_secure: bool = True
    minio_versioning: bool | None = None  # minio setup: None = leave the bucket as it is
    minio_lifecycle_days: int | None = None  # minio setup: expire noncurrent versions after N
    minio_region: str | None = None  # the S3 region (None: the SDK asks the server)
    minio_path_style: bool | None = None  # addressing: True path, False virtual host, None SDK
    minio_ca_file: str | None = None  # TLS: the CA bundle (absolute path) instead of the system's
    backup_bucket: str | None = None  # the backup destination (default kestra-<env>-backups)
    backup_endpoint: str | None = None  # None: minio_endpoint (the same S3 server)
    backup_secure: bool | None = None  # None: minio_secure
    backup_region: str | None = None  # None: minio_region on minio's endpoint (backup_s3)
    backup_path_style: bool | None = None  # None: minio_path_style on minio's endpoint
    backup_ca_file: str | None = None  # None: minio_ca_file on minio's endpoint
    backup_recipients: tuple[str, ...] = ()  # age public keys the Secrets are sealed to
    backup_lock_days: int | None = None  # minio setup: object-lock retention (governance)
    backup_include_executions: bool = False  # backup run: execution files too
    upgrade_requires: str | None = None  # upgrade run: the env that must run the target first
    upgrade_backup_max_age: str = "60m"  # upgrade run: how fresh the guarding backup set is
    upgrade_job_timeout: str = "30m"  # upgrade run: each migration Job
    upgrade_job_annotations: tuple[tuple[str, str], ...] = ()  # migration Jobs' pod annotations
    chart: Path = Path(DEFAULT_CHART)
    values: tuple[Path, ...] = ()
    kubeconfig_file: str | None = None  # chosen by flag, variable or file (None: not chosen)
    storage_insecure: bool = False  # --insecure: object storage's TLS certificates not verified
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def chart_path(self) -> Path:
        return self._chart[0]

    @property
    def chart_source(self) -> str:
        """``project`` (the project's own chart, or one a setting names) or ``packaged``."""
        return self._chart[1]

    @property
    def values_paths(self) -> tuple[Path, ...]:
        return self._values[0]

    @property
    def values_source(self) -> str:
        """``project`` (the project's own layers, or those kestra-ops.yaml lists) or
        ``packaged``."""
        return self._values[1]

    @cached_property
    def _chart(self) -> tuple[Path, str]:
        """The chart setting; left at its default, ``charts/kestra`` of the project (the folder
        of kestra-ops.yaml, else the working directory) when it has one, else the packaged
        chart. Resolved when first used: commands that need no chart never look."""
        path = self.chart if self.chart.is_absolute() else self.root / self.chart
        if self.sources.get("chart") == "default" and self.chart == Path(DEFAULT_CHART) \
                and not path.is_dir():
            from kestra_ops import packaged

            return packaged.chart(), packaged.SOURCE
        return path, "project"

    @cached_property
    def _values(self) -> tuple[tuple[Path, ...], str]:
        """The values layers; left at their default (``values/base.yaml`` +
        ``values/ENV.yaml``), the project's when it has a ``values/`` folder, else the packaged
        ones (when the package has layers for this environment)."""
        paths = tuple(p if p.is_absolute() else self.root / p for p in self.values)
        if self.sources.get("values") == "default" and self.values == _default_values(self.name) \
                and not (self.root / "values").is_dir():
            from kestra_ops import packaged

            layers = packaged.values_layers(self.name)
            if layers is not None:
                return layers, packaged.SOURCE
        return paths, "project"

    @property
    def backup_target(self) -> tuple[str | None, bool, str]:
        """(endpoint, secure, bucket) of the backup destination: backup.endpoint/secure when set,
        else the env's MinIO (minio.endpoint/secure); bucket backup.bucket."""
        endpoint = self.backup_endpoint or self.minio_endpoint
        secure = self.minio_secure if self.backup_secure is None else self.backup_secure
        return endpoint, bool(secure), self.backup_bucket or f"kestra-{self.name}-backups"

    @property
    def warnings(self) -> list[str]:
        """Settings that work but weaken the environment (shown by values validate --env)."""
        out = []
        if not self.minio_secure and self.name != "dev" and self.minio_endpoint \
                and not str(self.minio_endpoint).startswith("https://"):
            out.append(f"minio.secure is false for {self.name} "
                       f"({self.sources.get('minio_secure', 'config')}): kestra-ops reaches "
                       "MinIO over plain HTTP, so its keys and backups travel unencrypted")
        from kestra_ops.config_schema import plain_http_host

        host = plain_http_host(self.kestra_url)
        if host:
            out.append(f"kestra_url is plain http:// ({host}): Kestra's basic-auth credentials "
                       "would travel unencrypted; use https://")
        return out

    @property
    def kubeconfig(self) -> str | None:
        """The kubeconfig file to use: the one chosen by ``--kubeconfig`` >
        ``KESTRA_OPS_KUBECONFIG`` > kestra-ops.yaml (:attr:`kubeconfig_file`), else
        ``KESTRA_OPS_KUBECONFIG`` read when asked. The Kubernetes and Helm adapters take it from
        here (None: ``KUBECONFIG``, else ~/.kube/config)."""
        return self.kubeconfig_file or os.environ.get("KESTRA_OPS_KUBECONFIG") or None


@dataclass(frozen=True)
class Config:
    """The parsed configuration file (or the embedded default when there is none)."""

    root: Path
    path: Path | None
    defaults: Mapping[str, Any]
    environments: Mapping[str, Mapping[str, Any]]

    @property
    def env_names(self) -> list[str]:
        return list(self.environments)

    @property
    def chart_path(self) -> Path:
        """The chart whose schema applies to values files validated on their own: the file's
        ``defaults.chart``, else the project's ``charts/kestra``, else the packaged chart."""
        chart = _flatten(self.defaults).get("chart")
        if chart is not None:
            return Path(str(chart)) if Path(str(chart)).is_absolute() else self.root / str(chart)
        path = self.root / DEFAULT_CHART
        if path.is_dir():
            return path
        from kestra_ops import packaged

        return packaged.chart()

    def layer_owner(self, file: Path) -> tuple[str, int] | None:
        """The environment whose value stack has ``file`` as an overlay, and its index there."""
        target = file.resolve()
        for name in self.environments:
            env = self.environment(name, environ={})
            for i, p in enumerate(env.values_paths):
                if p.resolve() == target and i > 0:
                    return name, i
        return None

    def overlay_shared_with(self, name: str) -> list[str]:
        """The other environments whose values layers include ``name``'s overlay (its last
        layer): a command that writes the overlay (scale, upgrade) would change them too."""
        paths = self.environment(name, environ={}).values_paths
        if len(paths) < 2:
            return []
        target = paths[-1].resolve()
        return [other for other in self.environments if other != name and any(
            p.resolve() == target for p in self.environment(other, environ={}).values_paths)]

    def environment(self, name: str, *, flags: Mapping[str, Any] | None = None,
                    environ: Mapping[str, str] | None = None,
                    flag_names: Mapping[str, str] | None = None) -> Environment:
        """The environment ``name``: each of :data:`FIELDS` from ``flags`` > its
        ``KESTRA_OPS_<NAME>`` variable (``environ``) > the file > the built-in default. A flag or
        variable passes the file's rules (:func:`check_setting`); ``flag_names`` names the
        option that gave a flag in an error (default: :data:`FLAG_NAMES`, else ``--key``)."""
        if name not in self.environments:
            known = ", ".join(self.environments) or "none"
            where = self.path or "the embedded default configuration"
            raise ConfigError(f"unknown environment {name!r} (known in {where}: {known})")
        environ = os.environ if environ is None else environ
        merged: dict[str, Any] = {}
        sources: dict[str, str] = {}
        section = _flatten(self.environments[name] or {})
        for key in FIELDS:
            for origin, value in (("default", _builtin_default(key, name)),
                                  ("config", _flatten(self.defaults).get(key)),
                                  ("config", section.get(key)),
                                  ("environment", environ.get(f"KESTRA_OPS_{key.upper()}")),
                                  ("flag", (flags or {}).get(key))):
                if value is not None:
                    merged[key], sources[key] = value, origin
            if sources.get(key) in ("environment", "flag"):  # the file's are checked on load
                where = (f"KESTRA_OPS_{key.upper()}" if sources[key] == "environment"
                         else flag_name(key, flag_names))
                check_setting(key, merged[key], where)
        values = section.get("values") or _flatten(self.defaults).get("values")
        sources["values"] = "config"
        if values is None:
            values, sources["values"] = [p.as_posix() for p in _default_values(name)], "default"
        if isinstance(values, str) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{self.path}: environments.{name}.values must be a list of paths")
        secure = flag(merged.get("minio_secure", True))
        versioning = flag(merged.get("minio_versioning"))
        days = whole_days(merged, "minio_lifecycle_days", name)
        lock_days = whole_days(merged, "backup_lock_days", name)
        recipients = merged.get("backup_recipients") or ()
        if isinstance(recipients, str):
            recipients = [r for r in recipients.split(",") if r.strip()]
        recipients = tuple(str(r).strip() for r in recipients)
        kubeconfig = file_setting(self.root, merged, sources, "kubeconfig")
        return Environment(
            name=name, root=self.root, namespace=str(merged["namespace"]),
            release=str(merged["release"]), context=merged.get("context"),
            kestra_url=merged.get("kestra_url"), minio_endpoint=merged.get("minio_endpoint"),
            minio_bucket=merged.get("minio_bucket"), minio_secure=bool(secure),
            minio_versioning=None if versioning is None else bool(versioning),
            minio_lifecycle_days=days,
            backup_bucket=merged.get("backup_bucket"),
            backup_endpoint=merged.get("backup_endpoint") or None,
            backup_secure=flag(merged.get("backup_secure")),
            backup_recipients=recipients, backup_lock_days=lock_days,
            backup_include_executions=bool(flag(merged.get("backup_include_executions"))),
            minio_region=str(merged.get("minio_region") or "").strip() or None,
            minio_path_style=flag(merged.get("minio_path_style")),
            minio_ca_file=file_setting(self.root, merged, sources, "minio_ca_file"),
            backup_region=str(merged.get("backup_region") or "").strip() or None,
            backup_path_style=flag(merged.get("backup_path_style")),
            backup_ca_file=file_setting(self.root, merged, sources, "backup_ca_file"),
            storage_insecure=bool((flags or {}).get("storage_insecure")),
            upgrade_requires=str(merged.get("upgrade_requires") or "") or None,
            upgrade_backup_max_age=str(merged.get("upgrade_backup_max_age") or "60m"),
            upgrade_job_timeout=str(merged.get("upgrade_job_timeout") or "30m"),
            upgrade_job_annotations=tuple(sorted(
                (str(k), str(v)) for k, v in (merged.get("upgrade_job_annotations") or {}).items())),
            chart=Path(str(merged["chart"])), values=tuple(Path(v) for v in values),
            kubeconfig_file=kubeconfig, sources=sources)


# the command-line option that gives a setting, where it is not ``--<setting>``
FLAG_NAMES = {"context": "--kube-context", "namespace": "-n/--namespace"}


def flag_name(key: str, names: Mapping[str, str] | None = None) -> str:
    return (names or {}).get(key) or FLAG_NAMES.get(key) or f"--{key.replace('_', '-')}"


def _default_values(env: str) -> tuple[Path, ...]:
    return Path("values", "base.yaml"), Path("values", f"{env}.yaml")


def _builtin_default(key: str, env: str) -> Any:
    return {"namespace": DEFAULT_NAMESPACE, "release": DEFAULT_RELEASE, "chart": DEFAULT_CHART,
            "minio_bucket": f"kestra-{env}", "backup_bucket": f"kestra-{env}-backups",
            # staging before production (upgrade run); "" in the file says none
            "upgrade_requires": "staging" if env == "production" else None}.get(key)


def _flatten(section: Mapping[str, Any]) -> dict[str, Any]:
    """``minio: {endpoint: x}`` -> ``minio_endpoint: x`` (``backup:`` alike); other keys
    unchanged."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        key = str(key).replace("-", "_")
        if key in ("minio", "backup", "upgrade") and isinstance(value, Mapping):
            for sub, v in value.items():
                out[f"{key}_{str(sub).replace('-', '_')}"] = v
        else:
            out[key] = value
    return out


def find_config(start: Path | None = None, explicit: str | os.PathLike | None = None,
                environ: Mapping[str, str] | None = None) -> Path | None:
    environ = os.environ if environ is None else environ
    explicit = explicit or environ.get("KESTRA_OPS_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            from kestra_ops.readfile import kind_of

            why = kind_of(path) or "file not found"
            raise ConfigError(f"{path}: configuration {why}")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None, *, start: Path | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Load kestra-ops.yaml; without one, the embedded default (dev, staging, production)."""
    path = find_config(start, path, environ)
    if path is None:
        return Config(root=(start or Path.cwd()).resolve(), path=None, defaults={},
                      environments={name: {} for name in DEFAULT_ENVS})
    data = _parse_config(path)  # checked by config_schema: keys, types, names, credentials
    envs = data["environments"]
    return Config(root=path.parent.resolve(), path=path, defaults=data.get("defaults") or {},
                  environments=envs)


def _parse_config(path: Path) -> Any:
    """Parse and vet kestra-ops.yaml; the vetted result is cached by the file's content."""
    from kestra_ops import cache
    from kestra_ops.readfile import NotReadable, read_regular
    from kestra_ops.yamlio import MAX_BYTES

    try:  # a regular file, at most MAX_BYTES (a FIFO or /dev/zero would hang or never end)
        raw = read_regular(path, MAX_BYTES)
    except NotReadable as err:
        raise ConfigError(f"{path}: {err.reason}, more than {MAX_BYTES:,}" if err.too_large
                          else f"{path}: cannot read: {err.reason}") from None
    key = cache.file_key("config", path.resolve(), raw)
    hit = cache.get_json("config", key)
    if isinstance(hit, dict) and "data" in hit:
        try:  # checked again (the schema may be newer than the entry); lines come from a parse
            check_config(path, hit["data"])
            return hit["data"]
        except ConfigError:
            pass
    from kestra_ops.yamlfast import parse_plain
    from kestra_ops.yamlio import decode_utf8, load_yaml_text, to_plain

    text = decode_utf8(raw, str(path))
    # a plain document through libyaml; anything else (or any error) the round-trip loader reads
    # and reports (both give the lines config_schema names)
    node = parse_plain(text)
    if node is None:
        node = load_yaml_text(text, str(path))
    check_config(path, node)
    data = to_plain(node)
    cache.put_json("config", key, {"data": data})
    return data
