"""What went wrong on the wire, in words: "connection refused", "timed out connecting", "name not
resolved", "TLS certificate verify failed: self-signed certificate", never an exception's class
name (``MaxRetryError``, ``NewConnectionError``).

requests wraps urllib3, which wraps the socket and ssl errors (in ``args``, ``reason`` and
``__cause__``); :func:`describe` looks through the whole chain for the cause it can name. The
caller names the host ("cannot reach the Kubernetes API at https://10.0.0.1:6443: connection
refused"). One line, no URL credentials (the chain's messages are not quoted when a cause is
recognised; otherwise the innermost message, its object reprs and errno prefixes removed).
"""

from __future__ import annotations

import errno
import re
import socket
import ssl

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.ECONNABORTED: "connection closed without an answer",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable (no route)",
    errno.ETIMEDOUT: "timed out connecting",
}
_REPR = re.compile(r"<[^<>]*>:?\s*")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")


def chain(err: BaseException, limit: int = 12) -> list[BaseException]:
    """``err`` and every exception it wraps (``reason``, exception ``args``, ``__cause__``,
    ``__context__``), outermost first, each once."""
    seen: list[BaseException] = []
    todo = [err]
    while todo and len(seen) < limit:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        inner = [getattr(current, "reason", None), *getattr(current, "args", ()),
                 current.__cause__, current.__context__]
        todo += [e for e in inner if isinstance(e, BaseException)]
    return seen


def describe(err: BaseException) -> str:
    """The cause of a failed connection or request, in a few words (see the module doc)."""
    from urllib3 import exceptions as u3

    errors = chain(err)

    def first(*types):
        return next((e for e in errors if isinstance(e, types)), None)

    cert = first(ssl.SSLCertVerificationError)
    if cert is not None:
        why = getattr(cert, "verify_message", "") or ""
        return "TLS certificate verify failed" + (f": {why}" if why else "")
    tls = first(ssl.SSLError)
    if tls is not None:
        reason = getattr(tls, "reason", None) or ""
        if reason == "WRONG_VERSION_NUMBER":
            return "TLS handshake failed: the server does not answer in TLS (plain HTTP?)"
        if "CERTIFICATE_VERIFY_FAILED" in str(tls):
            return "TLS certificate verify failed"
        return "TLS error: " + (reason.replace("_", " ").lower() or _message(tls))
    if first(socket.gaierror, u3.NameResolutionError) is not None:
        return "name not resolved"
    for e in errors:
        words = _ERRNO_WORDS.get(getattr(e, "errno", None) or 0)
        if words:
            return words
    if first(ConnectionRefusedError) is not None:
        return "connection refused"
    if first(ConnectionAbortedError) is not None or any(  # (RemoteDisconnected is a reset)
            type(e).__name__ == "RemoteDisconnected" or "Connection aborted" in str(e)
            for e in errors):
        return "connection closed without an answer"
    if first(ConnectionResetError) is not None:
        return "connection reset by the server"
    if first(u3.ReadTimeoutError) is not None:
        return "timed out waiting for an answer"
    connect = first(u3.ConnectTimeoutError)
    if connect is not None and (not isinstance(connect, u3.NewConnectionError)
                                or first(TimeoutError) is not None):
        return "timed out connecting"
    if first(TimeoutError) is not None:
        return "timed out"
    if first(u3.ProxyError) is not None:
        return "the proxy refused or failed the connection"
    if first(u3.NewConnectionError) is not None:
        return "cannot open a connection"
    return _message(errors[-1]) or "connection failed"


def _message(err: BaseException) -> str:
    """The first line of an exception's message without object reprs or ``[Errno N]``."""
    text = _ERRNO.sub("", _REPR.sub("", str(err))).strip()
    line = text.splitlines()[0].strip() if text else ""
    return line[:200]
