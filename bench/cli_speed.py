#!/usr/bin/env python3
"""Start-up and validation speed, as ratios against baselines measured in the same run.

    .venv/bin/python bench/cli_speed.py [--runs N]

Targets (issue 2): `kestra-ops --help` median wall <= 100 ms; `kestra-ops values validate
values/production.yaml` median wall <= 1.0 x `helm lint charts/kestra -f values/production.yaml`.
Commands are interleaved round-robin so machine noise hits all of them alike. The validate figure
is given warm (the content-addressed report cache populated, as on a developer's machine or a
re-run) and cold (--no-cache: parse and validate from scratch, as on a fresh CI machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def find(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = shutil.which(name) or (str(beside) if beside.exists() else None)
    if not found:
        sys.exit(f"bench: {name} not found (run scripts/setup)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    kestra_ops, helm = find("kestra-ops"), find("helm")
    cache = tempfile.mkdtemp(prefix="kestra-ops-bench-")
    env = {**os.environ, "KESTRA_OPS_CACHE_DIR": cache}
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "kestra-ops --help": [kestra_ops, "--help"],
        "helm lint": [helm, "lint", "charts/kestra", "-f", "values/production.yaml"],
        "validate (warm)": [kestra_ops, "values", "validate", "values/production.yaml"],
        "validate (cold)": [kestra_ops, "values", "validate", "--no-cache",
                            "values/production.yaml"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for name, cmd in commands.items():  # warm-up: page cache, report cache
        subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)
    for _ in range(args.runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)
            times[name].append(time.perf_counter() - start)
            if proc.returncode != 0:
                sys.exit(f"bench: {name} failed ({proc.returncode}): {proc.stderr.decode()[-300:]}")
    shutil.rmtree(cache, ignore_errors=True)
    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"runs per command: {args.runs} (median wall, ms)")
    for name, value in med.items():
        print(f"  {name:22} {value:7.1f}")
    help_ok = med["kestra-ops --help"] <= 100
    print(f"kestra-ops --help: {med['kestra-ops --help']:.1f} ms (target <= 100 ms: "
          f"{'met' if help_ok else 'MISSED'}); {med['kestra-ops --help'] / med['python -c pass']:.1f}"
          " x a bare interpreter")
    for label in ("validate (warm)", "validate (cold)"):
        ratio = med[label] / med["helm lint"]
        print(f"values {label} / helm lint: {ratio:.2f} x (target <= 1.0: "
              f"{'met' if ratio <= 1.0 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
