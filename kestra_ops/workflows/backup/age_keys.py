"""age keys for sealed backup Secrets (:mod:`kestra_ops.workflows.backup.sealed`): recipients
(``backup.recipients``: ``age1...``, ``ssh-ed25519 ...``, ``ssh-rsa ...``), identity files and
``backup keygen``.

An identity file (``--identity FILE``: ``AGE-SECRET-KEY-1...`` lines, ``#`` comments, or an
unencrypted OpenSSH private key) is read with :func:`kestra_ops.readfile.read_regular`: a
regular file only (no FIFO, no device), not through a symlink, at most
:data:`MAX_IDENTITY_BYTES`; one readable by group or others is used with a warning. Errors name
the file and line, never the line's text. ``keygen`` writes a new identity with O_EXCL (never
over a file, never through a symlink), mode 0600, and shows only the public key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kestra_ops.errors import InvalidInput

MAX_IDENTITY_BYTES = 64 * 1024


def recipients(keys: tuple[str, ...] | list[str]) -> list:
    """pyrage recipients for ``backup.recipients`` (age1..., ssh-ed25519, ssh-rsa)."""
    import pyrage

    out = []
    for text in keys:
        text = text.strip()
        try:
            if text.startswith("ssh-"):
                out.append(pyrage.ssh.Recipient.from_str(text))
            else:
                out.append(pyrage.x25519.Recipient.from_str(text))
        except pyrage.RecipientError:
            raise InvalidInput(f"kestra-ops.yaml: backup.recipients: {text[:80]!r} is not an age "
                               "public key (age1...) or an ssh-ed25519/ssh-rsa public key"
                               ) from None
    return out


def load_identities(path: str | Path) -> tuple[list, list[str]]:
    """(pyrage identities, warnings) from an identity file; InvalidInput naming the file (and
    the line, never its text) when it is not one."""
    import pyrage

    from kestra_ops.readfile import NotReadable, read_regular

    path = Path(path)
    try:
        raw = read_regular(path, MAX_IDENTITY_BYTES, nofollow=True)
    except NotReadable as err:
        raise InvalidInput(f"--identity {path}: {err.reason}") from None
    warnings = []
    try:
        if os.stat(path, follow_symlinks=False).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"identity file {path} is readable by group or others: "
                            f"chmod 600 {path}")
    except OSError:
        pass
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in raw:
        try:
            return [pyrage.ssh.Identity.from_buffer(raw)], warnings
        except pyrage.IdentityError:
            raise InvalidInput(f"--identity {path}: not a usable ssh private key (a "
                               "passphrase-protected key is not supported)") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput(f"--identity {path}: not an age identity file") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"--identity {path}:{number}"
        if line.startswith("age1") or line.startswith("ssh-"):
            raise InvalidInput(f"{where}: a public key (recipient), not an identity: the file "
                               "must hold the private key (AGE-SECRET-KEY-1...)")
        if not line.upper().startswith("AGE-SECRET-KEY-1"):
            raise InvalidInput(f"{where}: not an age identity (AGE-SECRET-KEY-1...)")
        try:
            found.append(pyrage.x25519.Identity.from_str(line.upper()))
        except pyrage.IdentityError:
            raise InvalidInput(f"{where}: not a valid age identity") from None
    if not found:
        raise InvalidInput(f"--identity {path}: no age identity (AGE-SECRET-KEY-1...) in it")
    return found, warnings


def new_identity() -> tuple[str, str]:
    """(identity file text, public key) of a new x25519 age identity."""
    import datetime

    import pyrage

    identity = pyrage.x25519.Identity.generate()
    public = str(identity.to_public())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"# created: {now} by kestra-ops backup keygen\n# public key: {public}\n"
            f"{identity}\n"), public



def keygen(out: str | Path):
    """``backup keygen``: a new age identity written to ``out`` (0600, created with O_EXCL:
    never over an existing file, never through a symlink); the Report's message is the public
    key alone (what goes into backup.recipients)."""
    from kestra_ops.results import Report

    path = Path(out)
    if path.is_symlink():
        raise InvalidInput(f"--out {path}: is a symbolic link; refusing to write through it")
    if path.exists():
        raise InvalidInput(f"--out {path}: exists; refusing to overwrite an identity (a lost "
                           "identity makes the Secrets sealed to it unrecoverable)")
    if not path.parent.is_dir():
        raise InvalidInput(f"--out {path}: folder {path.parent} does not exist")
    text, public = new_identity()
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise InvalidInput(f"--out {path}: exists; refusing to overwrite it") from None
    except OSError as err:
        raise InvalidInput(f"--out {path}: cannot create it: {err.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        data = text.encode("ascii")
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)  # ours (O_EXCL): a half-written identity is no identity
        raise
    os.close(fd)
    return Report("backup keygen", None, message=public, outcome="created",
                  data={"recipient": public, "identity_file": str(path)},
                  details=[f"identity written to {path} (mode 0600): keep it off the cluster "
                           "and the bucket; put the public key below into backup.recipients"])
