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
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = 3.0


def main() -> int:
    from _support import EnvPatch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    from tests.fakes.helm_standin import install_helm_standin
    from tests.fakes.kestra_server import FakeKestra
    from tests.fakes.kube_api import FakeKube
    from tests.fakes.minio_health import MinioHealth
    from tests.helpers_checks import JOB, NS, healthy, objects

    from kestra_ops.settings import load_config
    from kestra_ops.workflows.release import release

    work = Path(tempfile.mkdtemp(prefix="kestra-ops-bench-release-"))
    kube = FakeKube(ready_delay=0.0).start()
    kestra = FakeKestra(step_seconds=0.05).start()
    minio = MinioHealth().start()
    try:
        os.environ.update({
            "KUBECONFIG": str(kube.write_kubeconfig(work / "kubeconfig")),
            "KESTRA_OPS_CONTEXT": "fake", "KESTRA_OPS_KESTRA_URL": kestra.url,
            "KESTRA_OPS_BASIC_AUTH_USERNAME": kestra.username,
            "KESTRA_OPS_BASIC_AUTH_PASSWORD": kestra.password, "KESTRA_OPS_NO_CACHE": "1"})
        install_helm_standin(work, EnvPatch()).state.seed(["superseded", "deployed"])
        shutil.copytree(ROOT / "values", work / "values")
        (work / "kestra-ops.yaml").write_text(
            f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\n"
            f"environments:\n  dev:\n    minio: {{endpoint: 'http://{minio.endpoint}'}}\n"
            "    values: [values/base.yaml, values/dev.yaml]\n")
        kube.seed(*objects())
        kube.controller.seed_completed_job_pod(NS, JOB)
        if not kube.wait_until(lambda: healthy(kube), timeout=10):
            sys.exit("bench: the fake install did not become healthy")
        env = load_config(work / "kestra-ops.yaml").environment("dev")
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
    finally:
        kestra.stop()
        minio.stop()
        kube.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
