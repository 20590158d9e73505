#!/usr/bin/env python3
"""kestra-ops' own overhead in a release: release wall minus the time spent inside helm and
inside the checklist's own waits, against the fake Kubernetes API, the fake Kestra server and
the recording stand-in helm (which renders with the real helm).

    .venv/bin/python bench/release.py [--runs N]

Each run releases a one-value change (workerThreads) to a healthy fake install. The report's
step timings split the wall: steps whose name starts with "helm" are helm's time, the "check"
step is the checklist (with its end-to-end flow, paced by the fake Kestra's execution steps);
everything else (lint, validate, preflight, lock, diff, backups, report) is kestra-ops' overhead.
Target (issue 6): overhead <= 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = 3.0


def main() -> int:
    from _support import fake_install

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from kestra_ops.workflows.release.run import release

    with fake_install("kestra-ops-bench-release-", step_seconds=0.05,
                      extra_env={"KESTRA_OPS_NO_CACHE": "1"}) as (work, env):
        overlay = work / "values" / "dev.yaml"
        text = overlay.read_text()
        rows = []
        for i in range(args.runs + 1):
            overlay.write_text(text.replace("workerThreads: 8", f"workerThreads: {9 + i}"))
            started = time.perf_counter()
            report = release(env, timeout="5m", check_timeout="60s", skip_backup=True)
            wall = time.perf_counter() - started
            if report.exit_code != 0:
                sys.exit(f"bench: release {i} ended {report.outcome}: {report.message}")
            helm = sum(s.seconds for s in report.steps if s.name.startswith("helm"))
            check = sum(s.seconds for s in report.steps if s.name.startswith("check"))
            if i == 1:
                print("steps: " + ", ".join(f"{s.name} {s.seconds:.2f}" for s in report.steps))
            if i:  # the first run pays the imports
                rows.append((wall, helm, check, wall - helm - check))
        med = [statistics.median(r[k] for r in rows) for k in range(4)]
        print(f"runs: {args.runs} releases of a one-value change (median seconds)")
        print(f"  release wall {med[0]:.3f}   inside helm {med[1]:.3f}   checklist {med[2]:.3f}")
        verdict = "met" if med[3] <= TARGET else "MISSED"
        print(f"kestra-ops overhead: {med[3]:.2f} s (target <= {TARGET:g} s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
