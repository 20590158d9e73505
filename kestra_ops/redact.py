"""One redaction helper used by every renderer, diff and report.

A value is secret when its key says so (password, secret-key, access-key, token, ...). Micronaut
placeholders such as ``${KESTRA_DB_PASSWORD}`` are references, not secrets, and stay visible.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "******"
_SECRET = re.compile(r"(password|passwd|secret|token|access[-_]?key|api[-_]?key|private[-_]?key|"
                     r"credentials?)", re.I)
# Keys that name a secret rather than hold one (existingSecrets.database.passwordKey: password).
_REFERENCE = re.compile(r"^((?i:existing[-_]?secrets?|secret[-_]?name)|name|.*[a-z]Key|.*-key-name)$")
_SECRET_KEYS_ENDING_IN_KEY = {"secret-key", "secretkey", "access-key", "accesskey", "api-key",
                              "apikey", "private-key", "privatekey", "encryption-key"}
PLACEHOLDER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_.-]*(?::(?P<default>[^}]*))?\}$")


def is_secret_key(key: Any) -> bool:
    key = str(key)
    if key.lower() in _SECRET_KEYS_ENDING_IN_KEY:
        return True
    if _REFERENCE.match(key):
        return False
    return bool(_SECRET.search(key))


def is_placeholder(value: Any) -> bool:
    """``${VAR}`` with no inline default: a reference to a secret, not the secret."""
    if not isinstance(value, str):
        return False
    m = PLACEHOLDER.match(value.strip())
    return bool(m) and not m.group("default")


def redact(data: Any) -> Any:
    """A copy of ``data`` with every literal secret replaced by :data:`MASK`."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if is_secret_key(key) and not isinstance(value, (dict, list)) and value not in (None, ""):
                out[key] = value if is_placeholder(value) else MASK
            else:
                out[key] = redact(value)
        if "name" in out and "value" in out and is_secret_key(out.get("name", "")):
            if not is_placeholder(out["value"]) and out["value"] not in (None, ""):
                out["value"] = MASK  # an env var entry: {name: DB_PASSWORD, value: ...}
        return out
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def literal_secrets(data: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every literal (non-placeholder) secret value in ``data``."""
    found: list[tuple] = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = path + (str(key),)
            if is_secret_key(key) and isinstance(value, (str, int, float)) and value != "":
                if not is_placeholder(value):
                    found.append(here)
            else:
                found.extend(literal_secrets(value, here))
        if is_secret_key(data.get("name", "")) and isinstance(data.get("value"), (str, int)):
            if data["value"] != "" and not is_placeholder(data["value"]):
                found.append(path + ("value",))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(literal_secrets(value, path + (i,)))
    return found


def mask_text(text: str, secrets: list[str]) -> str:
    """Replace each known secret value inside free text (log lines, error messages)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# in free text: a URL's user:password@, and key=value / key: value / "key": "value" pairs
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")
_SECRET_PAIR = re.compile(
    r"""(?P<key>["']?[\w.-]*(?:password|passwd|secret|token|access[-_]?key|api[-_]?key|"""
    r"""private[-_]?key)[\w.-]*["']?)(?P<sep>\s*[=:]\s*["']?)(?P<value>(?!\$\{)[^\s,;&"'}]+)""",
    re.I)


def mask_line(line: str, secrets: list[str] = ()) -> str:
    """A log line with credentials masked: known ``secrets``, a URL's password, and the value of
    any ``password=...``-like pair (container logs go into check and release reports)."""
    line = mask_text(line, list(secrets))
    line = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", line)
    return _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{MASK}", line)


def environment_secrets(environ) -> list[str]:
    """Secret values this process was given (KESTRA_OPS_*PASSWORD, *_SECRET_KEY, the database
    URL's password): masked wherever they show up in text from outside."""
    from urllib.parse import unquote, urlsplit

    found = [v for k, v in environ.items() if is_secret_key(k) and len(v) >= 4]
    for key, path in environ.items():  # <VARIABLE>_FILE: the credentials resolver's file source
        if key.endswith("_FILE") and is_secret_key(key[:-5]) and path:
            try:
                with open(path, encoding="utf-8") as fh:
                    value = fh.read(65536).removesuffix("\n").removesuffix("\r")
            except (OSError, UnicodeDecodeError):
                continue
            if len(value) >= 4:
                found.append(value)
    for key in ("KESTRA_OPS_DATABASE_URL",):
        try:
            password = urlsplit(environ.get(key, "")).password
        except ValueError:
            password = None
        if password:
            found += [password, unquote(password)]
    return found


def fingerprint_line(line: str) -> str:
    """A line with each credential replaced by a short digest of it (``<masked sha256:1a2b3c4d>``):
    a diff still shows THAT a password changed, never the password. Used on every line of a
    manifest diff (a ConfigMap's application.yml may carry a literal password in dev)."""
    import hashlib

    def digest(value: str) -> str:
        return f"<masked sha256:{hashlib.sha256(value.encode()).hexdigest()[:8]}>"

    line = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{digest(m.group(0))}@", line)
    return _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{digest(m['value'])}", line)
