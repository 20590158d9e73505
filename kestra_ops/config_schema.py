"""The schema of kestra-ops.yaml, checked before anything is taken from it.

Every problem is a :class:`~kestra_ops.errors.ConfigError` (exit 2) naming ``file:line`` and the
key: an unknown key (with the close match: ``namespcae`` -> ``namespace``), a wrong type
(``namespace: [a, b]``, ``minio: notamap``, ``environments: {dev: }``), a namespace or release
that is not a DNS label (so that none can ever reach helm's argv as a flag), a URL that is not
http(s) or carries credentials, and any credential anywhere (a secret-named key, in a map or a
list, or a password inside a URL or a ``key=value`` string): credentials come from KESTRA_OPS_*
variables, files or Kubernetes Secrets, never from this file.

The same rules apply to the values a KESTRA_OPS_* variable or a flag gives
(:func:`check_setting`), naming the variable or flag instead of a line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any, Callable

from kestra_ops.errors import ConfigError

# RFC 1123 label: what Kubernetes takes as a namespace; Helm also caps release names at 53
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_LENGTH = {"namespace": 63, "release": 53}
ENV_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|access[_-]?key|credential)", re.I)


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _label(kind: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > MAX_LENGTH[kind] or not DNS_LABEL.match(value):
            return (f"{value!r} is not a valid {kind} name: a DNS label of at most "
                    f"{MAX_LENGTH[kind]} lower-case letters, digits and '-', starting and ending "
                    "with a letter or digit")
        return None
    return check


def _context(value: Any) -> str | None:
    if _string(value):
        return _string(value)
    if value.startswith("-") or any(ord(c) < 32 for c in value):
        return f"{value!r} is not a kube context name (it starts with '-' or holds a control " \
               "character)"
    return None


def _path(value: Any) -> str | None:
    """A file path that cannot reach helm's argv as a flag."""
    if _string(value):
        return _string(value)
    if value.startswith("-") or any(ord(c) < 32 for c in value):
        return f"{value!r} is not a file path (it starts with '-' or holds a control character)"
    return None


def _url(value: Any) -> str | None:
    """An http(s) URL with a host and no user:password@."""
    from urllib.parse import urlsplit

    if _string(value):
        return _string(value)
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a URL"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "carries credentials (user:password@): they do not belong in the " \
               "configuration file; use KESTRA_OPS_BASIC_AUTH_USERNAME / _PASSWORD"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _endpoint(value: Any) -> str | None:
    """host[:port], or an http(s) URL to it; never with credentials."""
    if _string(value):
        return _string(value)
    text = value.strip()
    if "@" in text:
        return "carries credentials (user:password@): they do not belong in the configuration " \
               "file; use KESTRA_OPS_MINIO_ACCESS_KEY / _SECRET_KEY"
    if "://" in text:
        return _url(text)
    if text.startswith("-") or any(c.isspace() for c in text) or "/" in text:
        return f"{text!r} is not host[:port]"
    return None


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _region(value: Any) -> str | None:
    """An S3 region name (us-east-1, eu-west-3, garage, ...): one word of letters, digits,
    '-', '_' or '.'."""
    if not isinstance(value, str) or not REGION.match(value.strip()):
        return "must be an S3 region name such as us-east-1 (letters, digits, '-', '_', '.')"
    return None


def _bool_text(value: Any) -> str | None:
    """true/false from the file, or from a variable or flag in words."""
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in (
            "1", "0", "true", "false", "yes", "no", "on", "off")):
        return None
    return "must be true or false"


def _days(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "must be a whole number of days (1 or more)"
    return None


def _recipients(value: Any) -> str | None:
    """age recipients: public keys only (``age1...`` or an ``ssh-ed25519``/``ssh-rsa`` line);
    an identity (``AGE-SECRET-KEY-1...``) is a private key and never belongs here."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        return "must be a list of age public keys (age1...)"
    for item in value:
        if not isinstance(item, str):
            return "must be a list of age public keys (age1...)"
        text = item.strip()
        if text.upper().startswith("AGE-SECRET-KEY-"):
            return "holds an age identity (a PRIVATE key): only public keys (age1...) go here"
        if not (AGE_RECIPIENT.match(text) or text.startswith(("ssh-ed25519 ", "ssh-rsa "))):
            return f"{text[:80]!r} is not an age public key (age1...) or an ssh public key"
    return None


AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


def _paths(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of paths"
    return None


SETTINGS: dict[str, Callable[[Any], str | None]] = {
    "namespace": _label("namespace"), "release": _label("release"), "context": _context,
    "kubeconfig": _path, "kestra_url": _url, "chart": _string, "values": _paths,
}
# region, path_style, ca_file: how any S3 store is reached (kestra_ops/storage_options.py)
S3_OPTIONS: dict[str, Callable[[Any], str | None]] = {
    "region": _region, "path_style": _bool, "ca_file": _path,
}
MINIO: dict[str, Callable[[Any], str | None]] = {
    "endpoint": _endpoint, "bucket": _string, "secure": _bool, "versioning": _bool,
    "lifecycle_days": _days, **S3_OPTIONS,
}
# backup: the backup destination (its own bucket and credentials) and the sealing recipients
BACKUP: dict[str, Callable[[Any], str | None]] = {
    "bucket": _string, "endpoint": _endpoint, "secure": _bool, "recipients": _recipients,
    "lock_days": _days, "include_executions": _bool, **S3_OPTIONS,
}


def _duration(value: Any) -> str | None:
    from kestra_ops import durations
    from kestra_ops.errors import InvalidInput

    try:
        durations.parse(value)
    except (InvalidInput, TypeError, ValueError) as err:
        return f"must be a duration such as 60m or 1h ({err})"
    return None


def _env_name(value: Any) -> str | None:
    if not isinstance(value, str) or not (value == "" or ENV_NAME.match(value)):
        return "must name an environment (or be empty for none)"
    return None


def _annotations(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()):
        return "must map annotation names to string values"
    return None


# upgrade: the gates and Jobs of `kestra-ops upgrade run`
UPGRADE: dict[str, Callable[[Any], str | None]] = {
    "requires": _env_name, "backup_max_age": _duration, "job_timeout": _duration,
    "job_annotations": _annotations,
}
SECTIONS = {"minio": MINIO, "backup": BACKUP, "upgrade": UPGRADE}
# what a KESTRA_OPS_* variable or a flag gives (text), checked with the same rules
FLAT = {**{k: v for k, v in SETTINGS.items() if k != "values"},
        **{f"minio_{k}": v for k, v in MINIO.items()
           if k in ("endpoint", "bucket", "region", "ca_file")},
        **{f"backup_{k}": v for k, v in BACKUP.items()
           if k in ("bucket", "endpoint", "recipients", "region", "ca_file")},
        "minio_path_style": _bool_text, "backup_path_style": _bool_text,
        **{f"upgrade_{k}": v for k, v in UPGRADE.items() if k != "job_annotations"}}


class Checker:
    """Walks the parsed file (ruamel nodes: each key has its line)."""

    def __init__(self, path: Any):
        self.path = path

    def fail(self, node: Any, key: Any, where: str, problem: str, hint: str = "") -> None:
        raise ConfigError(f"{self.path}:{_line(node, key)}: {_printable(where)}: {problem}",
                          hint=hint or None)

    def check(self, data: Any) -> None:
        if data is None:
            raise ConfigError(f"{self.path}:1: the configuration is empty (expected "
                              "'environments')")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{self.path}:1: the configuration must be a mapping with "
                              "'defaults' and 'environments'")
        self.refuse_credentials(data, "")
        self.keys(data, "", ("defaults", "environments"))
        if data.get("defaults") is not None:
            self.section(data, "defaults", "defaults")
        envs = data.get("environments")
        if not isinstance(envs, Mapping) or not envs:
            self.fail(data, "environments", "environments",
                      "must map environment names to their settings (e.g. dev: {...})")
        for name in envs:
            where = f"environments.{name}"
            if not isinstance(name, str) or not ENV_NAME.match(name) or ".." in name:
                self.fail(envs, name, where, "an environment name is letters, digits, '-', '_' "
                          "or '.', starting and ending with a letter or digit")
            self.section(envs, name, where, allow_empty=False)

    def section(self, parent: Mapping, key: Any, where: str, allow_empty: bool = True) -> None:
        node = parent[key]
        if node is None and allow_empty:
            return
        if not isinstance(node, Mapping):
            self.fail(parent, key, where, f"must be a mapping of settings, not {_kind(node)}",
                      "write {} for an environment that takes every default")
        known = (*SETTINGS, *SECTIONS,
                 *(f"{sec}_{k}" for sec, rules in SECTIONS.items() for k in rules))
        self.keys(node, where, known)
        for name, value in node.items():
            norm = str(name).replace("-", "_")
            here = f"{where}.{name}"
            sec, _, sub = norm.partition("_")
            if norm in SECTIONS:
                self.subsection(node, name, here, SECTIONS[norm])
            elif sec in SECTIONS and sub in SECTIONS[sec]:
                self.value(node, name, here, SECTIONS[sec][sub], value)
            else:
                self.value(node, name, here, SETTINGS[norm], value)

    def subsection(self, parent: Mapping, key: Any, where: str, rules: Mapping) -> None:
        node = parent[key]
        if node is None:
            return
        if not isinstance(node, Mapping):
            self.fail(parent, key, where, f"must be a mapping ({', '.join(rules)}), not "
                      f"{_kind(node)}")
        self.keys(node, where, tuple(rules))
        for name, value in node.items():
            self.value(node, name, f"{where}.{name}", rules[str(name).replace("-", "_")], value)

    def value(self, node: Mapping, key: Any, where: str, check: Callable, value: Any) -> None:
        if value is None:
            return  # unset: the next source (defaults, built-in) applies
        problem = check(value)
        if problem:
            self.fail(node, key, where, problem)

    def keys(self, node: Mapping, where: str, known: tuple[str, ...]) -> None:
        for key in node:
            norm = str(key).replace("-", "_")
            if norm in known:
                continue
            import difflib  # only for a misspelt key (~0.6 ms to import)

            close = difflib.get_close_matches(norm, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known here: {', '.join(known)}"
            self.fail(node, key, f"{where}.{key}" if where else str(key), "unknown key", hint)

    def refuse_credentials(self, node: Any, trail: str) -> None:
        """A secret-named key (whatever its value: text, a list, a map) or a string holding a
        secret (a URL's password, ``password=...``), in any map or list of the file."""
        from kestra_ops.redact import is_secret_key, secret_spans

        if isinstance(node, Mapping):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            return
        for key, value in items:
            where = f"{trail}[{key}]" if isinstance(node, list) else (
                f"{trail}.{key}" if trail else str(key))
            secret_key = not isinstance(node, list) and (
                _SECRET_KEY.search(str(key)) or is_secret_key(key))
            if (secret_key and value not in (None, "")) or (
                    isinstance(value, str) and secret_spans(value)) or _url_password(value):
                self.fail(node, key, where, "credentials do not belong in the configuration "
                          "file; use KESTRA_OPS_* variables or Secrets")
            self.refuse_credentials(value, where)


def _url_password(value: Any) -> bool:
    """A URL with user:password@ (or user@: a name in a URL is half a credential)."""
    from urllib.parse import urlsplit

    if not isinstance(value, str) or "@" not in value or "://" not in value:
        return False
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return True
    return parts.password is not None


def check_config(path: Any, data: Any) -> None:
    """Check the parsed kestra-ops.yaml (``data``: ruamel nodes, for lines; plain data works,
    with line 1)."""
    Checker(path).check(data)


def check_setting(key: str, value: Any, origin: str) -> None:
    """A setting given by a KESTRA_OPS_* variable or a flag (``origin`` names it)."""
    check = FLAT.get(key)
    if check is None or value is None or (value == "" and key not in ("namespace", "release")):
        return  # an empty variable clears the setting (no endpoint, no URL: said where used)
    problem = check(value)
    if problem:
        raise ConfigError(f"{origin}: {problem}")


def plain_http_host(url: str | None) -> str | None:
    """The host of an ``http://`` URL that leaves this machine (loopback is not the wire)."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url or "")
        host = parts.hostname or ""
    except ValueError:
        return None
    if parts.scheme != "http" or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return host


def _line(node: Any, key: Any) -> int:
    lc = getattr(node, "lc", None)
    try:
        pos = lc.key(key) if isinstance(node, Mapping) else lc.item(key)
        return pos[0] + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        line = getattr(lc, "line", None)
        return line + 1 if isinstance(line, int) else 1


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


def _printable(text: str) -> str:
    """``text`` on one line: a key holding a newline or another control character is shown
    with it escaped (``name\\nspace``), never printed raw (a second line, a terminal escape)."""
    return text if text.isprintable() else repr(text)[1:-1]

