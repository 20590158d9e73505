"""kestra-ops: deploy, check, patch, back up and roll back a Kestra install on Kubernetes.

The package is a library first: every command of the ``kestra-ops`` CLI is a thin layer over a
function importable without Click (see :mod:`kestra_ops.values`, :mod:`kestra_ops.workflows`).
"""

__version__ = "0.1.0"
