"""A content-addressed cache of derived JSON documents, like ``eslint --cache`` or mypy's cache.

A key covers every input of what is cached: the bytes of the files it was derived from (and
their paths), the strings that shaped it (environment, target, ``--set`` expressions), the
working directory (file names in cached reports are relative to it) and a fingerprint of the
code that derives it (:data:`CODE`: the values rules, the YAML loader, the settings). A hit skips
YAML parsing and validation entirely; anything unreadable or corrupt is a miss. Users: values
validation reports (:mod:`kestra_ops.values.validate`) and the parsed kestra-ops.yaml
(:mod:`kestra_ops.settings`). Disable with ``--no-cache`` or ``KESTRA_OPS_NO_CACHE=1``; the folder
is ``KESTRA_OPS_CACHE_DIR`` or ``$XDG_CACHE_HOME/kestra-ops`` (``~/.cache/kestra-ops``).

Integrity: the deploy gate trusts a cached report, so an entry is trusted only when its MAC
(keyed BLAKE2b over the entry's kind, key and bytes) matches under a per-user secret, created on
first use as ``$XDG_CONFIG_HOME/kestra-ops/cache.key`` (``~/.config/...``; 0600, kept apart from
the cache folder, which CI systems often share or restore). An entry edited, truncated, or copied
under another entry's name is a miss (recomputed), never trusted; so is everything when the key
is not a private regular file of ours (then nothing is cached). Folders are 0700, files 0600;
an entry that is not a regular file (a FIFO, a symlink) or is larger than :data:`MAX_ENTRY` is a
miss without being read.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Iterable

try:  # hashlib's own BLAKE2, without hashlib loading OpenSSL: ~4 ms of a ~60 ms cache hit
    from _blake2 import blake2b as _digest
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b as _digest

try:  # hmac.compare_digest without importing hashlib (and OpenSSL) for it
    from _operator import _compare_digest
except ImportError:  # pragma: no cover
    from hmac import compare_digest as _compare_digest

from kestra_ops import __version__

_PACKAGE = Path(__file__).resolve().parent
MAX_INPUT = 4 * 1024 * 1024  # the loader refuses larger files: never cache what they give
MAX_ENTRY = 64 * 1024 * 1024  # a larger cache entry is not ours: a miss, never read
_KEY_BYTES = 32
_MAC_HEX = 64  # hex digits of the MAC line that starts every entry


def _code() -> list[Path]:
    """The code whose output is cached (a change to any of it is a miss)."""
    return sorted((_PACKAGE / "values").glob("*.py")) + [
        _PACKAGE / name for name in ("yamlio.py", "yamlshape.py", "readfile.py", "cache.py",
                                     "redact.py", "settings.py", "setting_values.py",
                                     "upgrades/values_rules.py",
                                     "upgrades/catalogue.py", "upgrades/config_view.py",
                                     "upgrades/version.py")]


def cache_dir() -> Path | None:
    if os.environ.get("KESTRA_OPS_NO_CACHE", "").strip() not in ("", "0", "false", "no"):
        return None
    base = os.environ.get("KESTRA_OPS_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kestra-ops"


def _code_fingerprint() -> str:
    parts = [__version__]
    for path in _code():
        st = path.stat()
        parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def content_key(parts: Iterable[str], files: Iterable[Path]) -> str | None:
    """The key of something derived from ``files`` (paths and bytes) and the strings ``parts``,
    in the working directory, by this code; None (do not cache) when a file cannot be read or is
    larger than :data:`MAX_INPUT` (the loader reports those, uncached)."""
    from kestra_ops.readfile import NotReadable, read_regular

    digest = _digest()
    try:
        for item in (_code_fingerprint(), os.getcwd(), *parts):
            digest.update(item.encode() + b"\0")
        for path in files:
            digest.update(str(path).encode() + b"\0")
            # a FIFO or /dev/zero is not hashed (it would block or never end): the loader
            # refuses it, uncached
            digest.update(_digest(read_regular(path, MAX_INPUT)).digest())
    except (OSError, NotReadable):
        return None
    return digest.hexdigest()


def file_key(kind: str, path: Path, data: bytes) -> str:
    """Key for something derived from one file's bytes (e.g. the parsed kestra-ops.yaml)."""
    digest = _digest()
    for item in (kind, _code_fingerprint(), str(path)):
        digest.update(item.encode() + b"\0")
    digest.update(data)
    return digest.hexdigest()


def key_path() -> Path:
    """The per-user secret that keys the entries' MACs (not in the cache folder)."""
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "kestra-ops" / "cache.key"


def _secret(create: bool) -> bytes | None:
    """The MAC key; created (0600, atomically) when ``create`` and absent. None when it cannot
    be trusted: not a regular file, not ours, readable or writable by others, or malformed."""
    try:
        path = key_path()
    except (RuntimeError, KeyError):  # no home directory to keep a key in
        return None
    secret = _read_secret(path)
    if secret is None and create and not os.path.lexists(path):
        secret = _create_secret(path)
    return secret


def _read_secret(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & 0o077 or st.st_size != 2 * _KEY_BYTES):
            return None
        text = os.read(fd, 2 * _KEY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except ValueError:
        return None
    return secret if len(secret) == _KEY_BYTES else None


def _create_secret(path: Path) -> bytes | None:
    """Write a new key beside its final name, then link it there: two processes starting at
    once agree on one key (the loser reads the winner's), and no reader sees half a key."""
    try:
        _private_dir(path.parent, parents=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, os.urandom(_KEY_BYTES).hex().encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: rename, unless one appeared
            if not os.path.lexists(path):
                os.replace(tmp, path)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
    except OSError:
        return None
    return _read_secret(path)


def _private_dir(folder: Path, *, parents: bool = False) -> None:
    """Create ``folder`` 0700 (and its missing parents when ``parents``); a folder of ours that
    exists with a wider mode is narrowed, unless it is world-writable (a shared place such as
    /tmp given as KESTRA_OPS_CACHE_DIR). Folders of others are left alone (the MAC still holds)."""
    if parents and not os.path.lexists(folder.parent):
        _private_dir(folder.parent, parents=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.stat(folder)  # a symlinked ~/.cache is fine: entries are opened without following
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(str(folder))
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid == os.geteuid() and mode != 0o700 and not mode & (stat.S_IWOTH | stat.S_ISVTX):
        os.chmod(folder, 0o700)


def _mac(secret: bytes, kind: str, key: str, body: bytes) -> str:
    digest = _digest(key=secret, digest_size=_MAC_HEX // 2, person=b"kestra-ops-cache")
    digest.update(kind.encode() + b"\0" + key.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _read_entry(path: Path) -> bytes | None:
    """The bytes of a regular file no larger than :data:`MAX_ENTRY`, else None (never blocks on
    a FIFO, never follows a symlink)."""
    from kestra_ops.readfile import NotReadable, read_regular

    try:
        return read_regular(path, MAX_ENTRY, nofollow=True)
    except (OSError, NotReadable):
        return None


def get_json(kind: str, key: str | None):
    """The cached document, or None: no key, no cache, no trusted secret, or an entry whose MAC
    does not match (edited, corrupt, or another entry's)."""
    folder = cache_dir()
    if key is None or folder is None:
        return None
    secret = _secret(create=False)
    if secret is None:
        return None
    raw = _read_entry(folder / kind / f"{key}.json")
    if raw is None or len(raw) > MAX_ENTRY:
        return None
    mac, sep, body = raw.partition(b"\n")
    try:
        expected = _mac(secret, kind, key, body).encode("ascii")
    except (TypeError, ValueError):
        return None
    if not sep or not _compare_digest(mac, expected):
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:
        return None


def put_json(kind: str, key: str | None, data) -> None:
    folder = cache_dir()
    if key is None or folder is None:
        return
    try:
        secret = _secret(create=True)
        if secret is None:
            return  # no key we can trust: caching what we could not vouch for later is useless
        body = json.dumps(data)
        if len(body) > MAX_ENTRY:
            return
        mac = _mac(secret, kind, key, body.encode("utf-8"))
        _private_dir(folder, parents=True)
        _private_dir(folder / kind)
        from kestra_ops.fileio import write_atomic

        write_atomic(folder / kind / f"{key}.json", f"{mac}\n{body}", secret=True)
    except (OSError, ValueError, TypeError):
        pass  # a read-only home or a full disk only costs speed
