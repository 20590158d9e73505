#!/usr/bin/env python3
"""Start-up and validation speed, as ratios against baselines measured in the same run.

    .venv/bin/python bench/cli_speed.py [--runs N]

Targets (issue 2): `kestra-ops --help` median wall <= 100 ms; `kestra-ops values validate
values/production.yaml` median wall <= 1.0 x `helm lint charts/kestra -f values/production.yaml`.
Commands are interleaved round-robin so machine noise hits all of them alike. The validate figure
is given warm (the content-addressed report cache populated, as on a developer's machine or a
re-run) and cold (--no-cache: parse and validate from scratch, as on a fresh CI machine).

Then (issue 12, item 17) the same ratios as alternated pairs (each pair's ratio, the median shown):
cold and warm validate against `helm lint` (<= 1.0 x), and a warm `plan --env production` against
the `helm lint --strict` + `helm template` it runs (<= 1.5 x); a cold plan is shown without target.
The plan rows are given again with the production overlay in distributed mode (issue 16).

Last (issue 12, item 16) the x1/x10/x100/x1000 curve: cold `values validate --env production` with
the production overlay grown by a long plugin blacklist (x1000: ~927 KB, ~9,300 entries) against
`helm lint` of the same layers; target at x1000 <= 2.0 x.
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
# issue 16: the production overlay switched to distributed mode, for the plan rows
DISTRIBUTED = """
mode: distributed
datasources: {default: {maximum-pool-size: 4}, postgres: {maximum-pool-size: 4}}
distributed:
  webserver: {replicas: 2, resources: {requests: {cpu: "1", memory: 2Gi}, limits: {memory: 2Gi}}}
  executor: {resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}}
  scheduler: {resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}}
  worker: {replicas: 3, resources: {requests: {cpu: "2", memory: 4Gi}, limits: {memory: 4Gi}}}
"""


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
    validate_and_plan_pairs(kestra_ops, helm, args.runs)
    large_overlay_curve(kestra_ops, helm, max(3, args.runs // 4))
    return 0


# --------------------------------------------------------------- issue 12, item 17: alternated pairs

def _wall(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd[:4])} failed ({proc.returncode}): "
                 f"{proc.stderr.decode()[-300:]}")
    return took


def _pair_ratios(baseline: list[list[str]], ours: list[str], env: dict, pairs: int,
                 warmup: int = 2) -> tuple[list[float], float, float]:
    """Alternated (baseline, ours) pairs, the first ``warmup`` not counted; the baseline is the
    sum of its commands' walls. Returns each pair's ratio ours / baseline and both medians (s)."""
    ratios, base_walls, our_walls = [], [], []
    for run in range(warmup + pairs):
        if run % 2:  # alternate which side goes first, too
            ours_wall = _wall(ours, env)
            base_wall = sum(_wall(cmd, env) for cmd in baseline)
        else:
            base_wall = sum(_wall(cmd, env) for cmd in baseline)
            ours_wall = _wall(ours, env)
        if run >= warmup:
            ratios.append(ours_wall / base_wall)
            base_walls.append(base_wall)
            our_walls.append(ours_wall)
    return ratios, statistics.median(base_walls), statistics.median(our_walls)


def validate_and_plan_pairs(kestra_ops: str, helm: str, pairs: int) -> None:
    """Issue 12, item 17, as alternated pairs with the median ratio: cold and warm ``values
    validate`` of the shipped production values against ``helm lint`` (targets <= 1.0 x), and a
    warm ``plan --env production`` (validation report and Kubernetes schema verdicts cached)
    against the two helm commands it runs, ``helm lint --strict`` + ``helm template`` (target
    <= 1.5 x); a cold plan (nothing cached) is shown too, without a target."""
    cache = tempfile.mkdtemp(prefix="kestra-ops-bench-")
    warm = {**os.environ, "KESTRA_OPS_CACHE_DIR": cache}
    warm.pop("KESTRA_OPS_NO_CACHE", None)
    # as installed (pip compiles the package): with PYTHONDONTWRITEBYTECODE set in the caller's
    # environment every edited module would be compiled from source on every run (~30 ms)
    warm.pop("PYTHONDONTWRITEBYTECODE", None)
    cold = {**warm, "KESTRA_OPS_NO_CACHE": "1"}
    values = ["-f", "values/base.yaml", "-f", "values/production.yaml"]
    lint = [helm, "lint", "charts/kestra", "-f", "values/production.yaml"]
    plan_helm = [[helm, "lint", "charts/kestra", "--namespace", "hyperplane-kestra", *values,
                  "--strict"],
                 [helm, "template", "kestra", "charts/kestra", "--namespace", "hyperplane-kestra",
                  *values, "--kube-version", "1.33.0"]]
    validate = [kestra_ops, "values", "validate", "values/production.yaml"]
    plan = [kestra_ops, "plan", "--env", "production", "-q"]
    # issue 16: the same plan bar with the production overlay in distributed mode (a copy of
    # the project's values beside the real chart, as large_overlay_curve builds it)
    work = Path(tempfile.mkdtemp(prefix="kestra-ops-bench-distributed-"))
    shutil.copytree(ROOT / "values", work / "values")
    (work / "charts").symlink_to(ROOT / "charts")
    shutil.copy(ROOT / "kestra-ops.yaml", work / "kestra-ops.yaml")
    production = work / "values" / "production.yaml"
    production.write_text(production.read_text() + DISTRIBUTED)
    spread = {"KESTRA_OPS_CONFIG": str(work / "kestra-ops.yaml")}
    layers = ["-f", str(work / "values" / "base.yaml"), "-f", str(production)]
    spread_helm = [[helm, "lint", "charts/kestra", "--namespace", "hyperplane-kestra", *layers,
                    "--strict"],
                   [helm, "template", "kestra", "charts/kestra", "--namespace",
                    "hyperplane-kestra", *layers, "--kube-version", "1.33.0"]]
    rows = [("values validate (cold, --no-cache)", [lint], [*validate[:3], "--no-cache",
                                                             validate[3]], cold, 1.0),
            ("values validate (warm)", [lint], validate, warm, 1.0),
            ("plan --env production (warm)", plan_helm, plan, warm, 1.5),
            ("plan --env production (cold)", plan_helm, plan, cold, None),
            ("plan, distributed mode (warm)", spread_helm, plan, {**warm, **spread}, 1.5),
            ("plan, distributed mode (cold)", spread_helm, plan, {**cold, **spread}, None)]
    print(f"alternated pairs (issue 12, item 17): {pairs} per row after 2 warm-up, "
          "median ratio shown")
    try:
        for label, baseline, ours, env, target in rows:
            ratios, base, mine = _pair_ratios(baseline, ours, env, pairs)
            ratio = statistics.median(ratios)
            verdict = ("" if target is None else
                       f" (target <= {target}: {'met' if ratio <= target else 'MISSED'})")
            against = "helm lint" if len(baseline) == 1 else "helm lint --strict + helm template"
            print(f"  {label:36} {ratio:5.2f} x {against}{verdict}; medians {mine * 1000:.0f} "
                  f"vs {base * 1000:.0f} ms; pairs {min(ratios):.2f}..{max(ratios):.2f}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------- issue 12, item 16: list length

def grown_overlay(factor: int) -> str:
    """values/production.yaml grown ``factor`` times by a plugin blacklist (one entry and its
    comment a line, ~100 bytes): x1000 is the 927 KB overlay with ~9,300 entries of the issue."""
    base = (ROOT / "values" / "production.yaml").read_text()
    target = len(base.encode()) * factor
    lines, size, i = [], len(base) + 40, 0
    while size < target:
        line = (f'      - "io.kestra.plugin.scripts.python.Script{i:05d}"   '
                f"# blocked in production, ticket OPS-{i:05d}\n")
        lines.append(line)
        size += len(line)
        i += 1
    head = '  plugins:\n    blacklist:\n      - "io.kestra.plugin.docker.*"\n'
    return base.replace("kestra:\n", "kestra:\n" + head + "".join(lines), 1)


def large_overlay_curve(kestra_ops: str, helm: str, pairs: int) -> None:
    """Issue 12, item 16: cold ``values validate --env production`` with the production overlay
    grown x10, x100 and x1000 (a long plugin blacklist), against ``helm lint`` of the same
    layers, as alternated pairs; target at x1000: <= 2.0 x (the merge was quadratic in the
    list's length: 121 s against 0.5 s)."""
    work = Path(tempfile.mkdtemp(prefix="kestra-ops-bench-curve-"))
    try:
        shutil.copytree(ROOT / "values", work / "values")
        (work / "charts").symlink_to(ROOT / "charts")
        shutil.copy(ROOT / "kestra-ops.yaml", work / "kestra-ops.yaml")
        env = {**os.environ, "KESTRA_OPS_CONFIG": str(work / "kestra-ops.yaml"),
               "KESTRA_OPS_NO_CACHE": "1"}
        validate = [kestra_ops, "values", "validate", "--no-cache", "--env", "production"]
        lint = [helm, "lint", str(work / "charts" / "kestra"), "-f",
                str(work / "values" / "base.yaml"), "-f", str(work / "values" / "production.yaml")]
        print(f"large overlay (issue 12, item 16): cold validate / helm lint, {pairs} pairs")
        for factor in (1, 10, 100, 1000):
            text = grown_overlay(factor)
            (work / "values" / "production.yaml").write_text(text)
            ratios, base, mine = _pair_ratios([lint], validate, env, pairs, warmup=1)
            ratio = statistics.median(ratios)
            verdict = (f" (target <= 2.0: {'met' if ratio <= 2.0 else 'MISSED'})"
                       if factor == 1000 else "")
            print(f"  x{factor:<5} {len(text) / 1024:7.0f} KB {ratio:6.2f} x helm lint{verdict}; "
                  f"medians {mine * 1000:.0f} vs {base * 1000:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
