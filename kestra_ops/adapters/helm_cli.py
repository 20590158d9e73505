"""The helm binary, run directly for the commands pyhelm3 lacks (lint, template, dependency).

helm is found by ``KESTRA_OPS_HELM``, then ``PATH``, then beside the Python interpreter (where
``scripts/setup`` installs a pinned one into the virtualenv). Arguments are passed as a list,
never through a shell; helm's environment is :func:`kestra_ops.adapters.childenv.for_helm`
(none of our ``KESTRA_OPS_*`` secrets).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from kestra_ops.adapters import childenv
from kestra_ops.errors import OperationFailed, ToolMissing

INSTALL_HINT = "install helm 3.x or 4.x, or run: scripts/install-helm.sh .venv/bin"


def find_helm(explicit: str | None = None) -> str:
    candidate = explicit or os.environ.get("KESTRA_OPS_HELM")
    if candidate:
        if shutil.which(candidate):
            return shutil.which(candidate)  # type: ignore[return-value]
        raise ToolMissing(f"helm not found at {candidate!r} (--helm or KESTRA_OPS_HELM)",
                          hint=INSTALL_HINT)
    found = shutil.which("helm")
    if found:
        return found
    beside = Path(sys.executable).parent / "helm"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise ToolMissing("helm is not installed (not on PATH, not beside the interpreter)",
                      hint=INSTALL_HINT)


@dataclass(frozen=True)
class HelmResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_helm(args: Sequence[str], *, helm: str | None = None, timeout: float = 300,
             input_text: str | None = None) -> HelmResult:
    binary = find_helm(helm)
    cmd = [binary, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              input=input_text, check=False, env=childenv.for_helm())
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"helm {args[0]} did not finish within {timeout:g}s") from None
    except OSError as err:
        raise ToolMissing(f"cannot run {binary}: {err.strerror or err}", hint=INSTALL_HINT) from None
    return HelmResult(cmd, proc.returncode, proc.stdout, proc.stderr)


@lru_cache(maxsize=8)
def helm_version(helm: str | None = None) -> tuple[int, int, int]:
    result = run_helm(["version", "--template", "{{.Version}}"], helm=helm, timeout=30)
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", result.stdout)
    if not result.ok or not m:
        raise ToolMissing(f"cannot read helm's version: {result.stderr.strip() or result.stdout}")
    return int(m[1]), int(m[2]), int(m[3])


@lru_cache(maxsize=None)
def reads_command():
    """pyhelm3's :class:`Command` (for :class:`kestra_ops.adapters.helm.Helm`'s reads) whose
    ``run`` starts helm itself: an argument list (no shell) and :func:`childenv.for_helm` as its
    environment (pyhelm3 runs ``/bin/sh -c`` with all of ours). The errors raised are pyhelm3's,
    as ``Helm._read`` expects them."""
    import asyncio  # here, not at the top: ~16 ms that lint and template never need

    from pyhelm3 import Command, errors
    from pyhelm3.command import CONNECTION_ERROR

    class _Command(Command):
        async def run(self, command, input=None) -> bytes:
            argv = [self._executable, *(a if isinstance(a, (str, bytes)) else str(a)
                                        for a in command)]
            for flag, value in (("--kubeconfig", self._kubeconfig),
                                ("--kube-context", self._kubecontext),
                                ("--kube-apiserver", self._kubeapiserver),
                                ("--kube-token", self._kubetoken)):
                if value:
                    argv += [flag, str(value)]
            if self._insecure_skip_tls_verify:
                argv.append("--kube-insecure-skip-tls-verify")
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE if input is not None else
                    asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, env=childenv.for_helm())
            except OSError as err:
                raise ToolMissing(f"cannot run {argv[0]}: {err.strerror or err}",
                                  hint=INSTALL_HINT) from None
            try:
                stdout, stderr = await proc.communicate(input)
            except asyncio.CancelledError:
                try:
                    proc.terminate()
                    await proc.communicate()
                except ProcessLookupError:
                    pass
                raise
            if proc.returncode == 0:
                return stdout
            text = stderr.decode(errors="replace").lower()
            if "release: not found" in text:
                raise errors.ReleaseNotFoundError(proc.returncode, stdout, stderr)
            if "etcdserver" in text or CONNECTION_ERROR.search(text):
                raise errors.ConnectionError(proc.returncode, stdout, stderr)
            raise errors.Error(proc.returncode, stdout, stderr)

    return _Command


def _values_args(values: Sequence[Path]) -> list[str]:
    return [arg for path in values for arg in ("-f", str(path))]


def lint(chart: Path, values: Sequence[Path], *, strict: bool = True, namespace: str = "default",
         helm: str | None = None) -> HelmResult:
    args = ["lint", str(chart), "--namespace", namespace, *_values_args(values)]
    return run_helm(args + (["--strict"] if strict else []), helm=helm)


def template(chart: Path, values: Sequence[Path], *, release: str, namespace: str,
             kube_version: str | None = None, helm: str | None = None,
             api_versions: Sequence[str] = ()) -> HelmResult:
    args = ["template", release, str(chart), "--namespace", namespace, *_values_args(values)]
    if kube_version:
        args += ["--kube-version", kube_version]
    for api in api_versions:  # what .Capabilities.APIVersions.Has answers offline
        args += ["--api-versions", api]
    return run_helm(args, helm=helm)


def chart_has_dependencies(chart: Path) -> bool:
    text = (chart / "Chart.yaml").read_text(encoding="utf-8") if (chart / "Chart.yaml").is_file() else ""
    return bool(re.search(r"^dependencies\s*:", text, re.M))
