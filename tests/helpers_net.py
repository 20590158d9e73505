"""Addresses that refuse connections, for tests of unreachable clusters and servers."""

from __future__ import annotations

import socket
from pathlib import Path


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_kubeconfig(path: Path, context: str = "fake") -> str:
    """Write at ``path`` a kubeconfig whose one cluster refuses connections; its path."""
    Path(path).write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: gone, cluster: {{server: "http://127.0.0.1:{closed_port()}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: {context}, context: {{cluster: gone, user: u}}}}]
current-context: {context}
""")
    return str(path)
