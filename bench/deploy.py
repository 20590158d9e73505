#!/usr/bin/env python3
"""kestra-ops' own overhead around the helm upgrade it wraps, against the fake Kubernetes API.

    .venv/bin/python bench/deploy.py [--runs N]

Each run deploys a change (workerThreads alternates) with the recording stand-in helm, whose
upgrade renders the chart with the real helm and records the release. The DeployResult's step
timings split the wall time into kestra-ops' overhead (validate + preflight + lock + dependency
check + diff) and the helm upgrade. Targets (issue 3): overhead <= 2 s and <= 0.5 x the helm
call. Caveat printed with the result: the stand-in's upgrade does no API writes and no --wait,
so it is a lower bound of a real helm upgrade, and the ratio is pessimistic.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from _support import EnvPatch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    from tests.fakes.helm_standin import install_helm_standin
    from tests.fakes.kube_api import FakeKube

    from kestra_ops.settings import load_config
    from kestra_ops.workflows.deploy.upgrade import deploy

    work = Path(tempfile.mkdtemp(prefix="kestra-ops-bench-deploy-"))
    kube = FakeKube(ready_delay=0.0).start()
    try:
        os.environ["KUBECONFIG"] = str(kube.write_kubeconfig(work / "kubeconfig"))
        os.environ["KESTRA_OPS_CONTEXT"] = "fake"
        os.environ["KESTRA_OPS_NO_CACHE"] = "1"
        install_helm_standin(work, EnvPatch())
        shutil.copytree(ROOT / "values", work / "values")
        (work / "kestra-ops.yaml").write_text(
            f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\n"
            "environments:\n  dev: {values: [values/base.yaml, values/dev.yaml]}\n")
        env = load_config(work / "kestra-ops.yaml").environment("dev")
        overlay = work / "values" / "dev.yaml"
        text = overlay.read_text()
        overheads, helms, walls = [], [], []
        for i in range(args.runs + 1):
            overlay.write_text(text.replace("workerThreads: 8", f"workerThreads: {8 + i}"))
            result = deploy(env, timeout="5m")
            if result.outcome != "deployed":
                sys.exit(f"bench: deploy {i} ended {result.outcome}: {result.message}")
            if i == 0:
                continue  # first install: warm-up
            upgrade = sum(s.seconds for s in result.steps if s.name.startswith("helm upgrade"))
            total = sum(s.seconds for s in result.steps)
            overheads.append(total - upgrade)
            helms.append(upgrade)
            walls.append(total)
        over, helm_s = statistics.median(overheads), statistics.median(helms)
        print(f"runs: {args.runs} deploys of a one-value change (median seconds)")
        print(f"  kestra-ops overhead (validate+preflight+lock+diff): {over:.3f}")
        print(f"  helm upgrade (stand-in, real helm rendering):       {helm_s:.3f}")
        print(f"overhead: {over:.2f} s (target <= 2 s: {'met' if over <= 2 else 'MISSED'})")
        ratio = over / helm_s
        print(f"overhead / helm upgrade: {ratio:.2f} x (target <= 0.5: "
              f"{'met' if ratio <= 0.5 else 'MISSED'}; pessimistic: the stand-in upgrade does no "
              "API writes and no --wait, a real one takes longer)")
    finally:
        kube.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
