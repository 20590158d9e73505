"""One redaction helper used by every renderer, diff and report.

A value is secret when its key says so (password, secret-key, access-key, token, ...). Micronaut
placeholders such as ``${KESTRA_DB_PASSWORD}`` are references, not secrets, and stay visible.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
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


# an environment variable's name that says it holds a secret (extraEnv: DB_PASS, STRIPE_KEY...)
_SECRET_ENV_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL", re.I)
# secrets inside a string: a URL's user:PASSWORD@ (postgresql://, jdbc:postgresql://, https://),
# up to the last '@' of the authority (urlsplit's reading: a raw '@' in the password too)
_IN_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#@:]*:(?P<value>[^\s/?#]+)@"
                     r"(?=[^\s/?#@]*(?:[/?#\s]|$))")
# ... and KEY=VALUE / KEY: VALUE pairs whose key says secret: a URL's ?password=, a JDBC
# ;password=, -Dx.keyStorePassword=, a conninfo's password=, an embedded YAML's password:
_IN_PAIR = re.compile(r"(?P<pre>^|[\s?&;,{(\[\"'])(?P<key>[\w.-]+)[\"']?[ \t]*(?:=|:(?!//))[ \t]*"
                      r"(?P<quote>[\"']?)")
_REFERENCE_VALUE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_.-]*\}[,;}\])]*$")  # ${VAR}, ${VAR}},
_QUERY_END = re.compile(r"[\s&;#]")  # after ?key= / &key= / ;key=: the next parameter
_WORD_END = re.compile(r"\s")  # elsewhere (-Dkey=, conninfo, YAML): the next blank


def _value_end(text: str, m: re.Match) -> int:
    start = m.end()
    if m["quote"]:
        end = text.find(m["quote"], start)
        return len(text) if end < 0 else end
    stop = (_QUERY_END if m["pre"] in ("?", "&", ";") else _WORD_END).search(text, start)
    return stop.start() if stop else len(text)


def is_secret_env_name(name: Any) -> bool:
    """``name`` of an environment variable (``{name: X, value: ...}``) that holds a secret:
    ``*PASS*``, ``*SECRET*``, ``*TOKEN*``, ``*KEY*`` (and ``*PWD*``, ``*CREDENTIAL*``)."""
    return isinstance(name, str) and bool(_SECRET_ENV_NAME.search(name))


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds a literal secret inside it (a URL's password, ``password=...``,
    ``-D...Password=...``); placeholders (``${VAR}``) are references, not secrets."""
    if not isinstance(text, str) or ("=" not in text and ":" not in text):
        return []  # most strings (names, globs, hosts): nothing to look for
    spans = []
    for m in _IN_URL.finditer(text):
        if not m["value"].startswith("${"):
            spans.append(m.span("value"))
    for m in _IN_PAIR.finditer(text):
        key = m["key"].rsplit(".", 1)[-1]  # -Djavax.net.ssl.keyStorePassword: the last part
        key = key[2:] if key.startswith("-D") else key.lstrip("-")
        end = _value_end(text, m)
        value = text[m.end():end]
        if value and is_secret_key(key) and not _REFERENCE_VALUE.match(value):
            spans.append((m.end(), end))
    return _merged(spans)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans as one (a URL's password that is also a pair's value)."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(set(spans)):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def mask_embedded(text: str) -> str:
    """``text`` with every secret inside it (:func:`secret_spans`) replaced by :data:`MASK`."""
    out, last = [], 0
    for start, end in secret_spans(text):
        out += [text[last:start], MASK]
        last = end
    return "".join(out) + text[last:] if out else text


def _literal(value: Any) -> bool:
    """A scalar that is a literal secret when its key says secret."""
    return (isinstance(value, (str, int, float)) and not isinstance(value, bool)
            and value != "" and not is_placeholder(value))


def is_secret_env_entry(data: dict) -> bool:
    """An env var entry ``{name: DB_PASSWORD, value: hunter2}`` holding a literal value."""
    return (is_secret_env_name(data.get("name")) or is_secret_key(data.get("name", ""))) \
        and "value" in data and _literal(data["value"]) and not isinstance(data["value"], float)


def redact(data: Any, *, _secret: bool = False) -> Any:
    """A copy of ``data`` with every literal secret replaced by :data:`MASK` (a secret inside a
    string, such as a URL's password, is masked in place; a list under a secret key is a list
    of secrets)."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out[key] = redact(value, _secret=is_secret_key(key))
        if is_secret_env_entry(data):
            out["value"] = MASK  # an env var entry: {name: DB_PASSWORD, value: ...}
        return out
    if isinstance(data, list):
        return [redact(v, _secret=_secret) for v in data]
    if _secret and _literal(data):
        return MASK
    if isinstance(data, str):
        return mask_embedded(data)
    return data


def literal_secrets(data: Any, path: tuple = (), _secret: bool = False) -> list[tuple]:
    """Paths of every literal (non-placeholder) secret value in ``data``: under a key that says
    secret (and inside its lists and maps), an env var entry whose name says secret, and any
    string holding a secret inside it (:func:`secret_spans`). A list under a secret key is a
    list of secrets; a map under one is judged key by key (``secretKeyRef: {name, key}``)."""
    found: list[tuple] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(literal_secrets(value, path + (str(key),), is_secret_key(key)))
        if is_secret_env_entry(data) and path + ("value",) not in found:
            found.append(path + ("value",))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(literal_secrets(value, path + (i,), _secret))
    elif (_secret and _literal(data)) or secret_spans(data):
        found.append(path)
    return found


def secret_values(data: Any) -> list[str]:
    """The text of every literal secret in ``data`` (whole values, and the parts of strings
    that are secrets): what to mask wherever it might be echoed (findings, errors)."""
    out: list[str] = []
    for path in literal_secrets(data):
        node = data
        for part in path:
            node = node[part]
        spans = secret_spans(node) if isinstance(node, str) else []
        if spans and not _under_secret_key(path):
            out += [node[a:b] for a, b in spans]
        else:
            out.append(str(node))
    return list(dict.fromkeys(out))


def _under_secret_key(path: tuple) -> bool:
    return any(isinstance(p, str) and is_secret_key(p) for p in path) or path[-1:] == ("value",)


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
