"""The comment-preserving overlay edit (kestra_ops/workflows/overlay_edit.py) and the scale plan
over it (kestra_ops/workflows/scale/plan.py): what a line edit can do, what it refuses."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from kestra_ops.errors import Conflict, InvalidInput
from kestra_ops.workflows.overlay_edit import plan_edit, render_scalar, restore, set_values, write

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = textwrap.dedent("""\
    # dev overlay
    mode: standalone   # switched by kestra-ops scale
    distributed:
      # the API
      webserver:
        replicas: 1
    kestra:
      url: https://kestra.example.com/
    """)


def test_a_scalar_is_replaced_in_place_with_its_comment():
    out = set_values(OVERLAY, {("mode",): "distributed"})
    assert out == OVERLAY.replace("mode: standalone", "mode: distributed", 1)
    assert "# switched by kestra-ops scale" in out


def test_a_missing_key_goes_under_its_block_the_missing_levels_with_it():
    out = set_values(OVERLAY, {("distributed", "worker", "replicas"): 3})
    assert out == OVERLAY.replace("distributed:\n", "distributed:\n  worker:\n    replicas: 3\n")
    assert yaml.safe_load(out)["distributed"] == {"worker": {"replicas": 3},
                                                  "webserver": {"replicas": 1}}


def test_top_level_keys_are_appended_under_one_comment():
    text = "kestra:\n  url: x"  # no final newline
    out = set_values(text, {("mode",): "distributed", ("distributed", "worker", "replicas"): 2})
    assert out == ("kestra:\n  url: x\n\n# written by kestra-ops\nmode: distributed\n"
                   "distributed:\n  worker:\n    replicas: 2\n")
    assert set_values("", {("mode",): "distributed"}).endswith("mode: distributed\n")


@pytest.mark.parametrize("text, why", [
    ("distributed: {webserver: {replicas: 1}}\n", "flow mapping"),
    ("distributed: {}\n", "empty"),
    ("distributed:\n", "not a block mapping"),
    ("mode: >\n  standalone\n", "would change more"),
    ("distributed:\n  worker: [1, 2]\n", "not a block mapping"),
    ("- a\n- b\n", "not a mapping"),
])
def test_what_a_line_edit_cannot_do_is_refused(text, why):
    path = ("distributed", "worker", "replicas") if text.startswith("distributed") else ("mode",)
    with pytest.raises(InvalidInput, match=why) as err:
        set_values(text, {path: 2 if path[0] == "distributed" else "distributed"}, "o.yaml")
    assert "by hand" in str(err.value) or why == "not a mapping"


def test_scalars_render_as_yaml_reads_them_back():
    for value in ("distributed", "yes", "1.0", "a b", 'q"', 3, True):
        assert yaml.safe_load(f"k: {render_scalar(value)}")["k"] == value
    with pytest.raises(InvalidInput):
        render_scalar(1.5)


class _Env:
    def __init__(self, root: Path, name: str = "dev"):
        self.root, self.name = root, name
        self.values_paths = [root / "values" / "base.yaml", root / "values" / f"{name}.yaml"]
        self.chart_path = ROOT / "charts" / "kestra"


@pytest.fixture
def env(tmp_path):
    (tmp_path / "values").mkdir()
    for name in ("base.yaml", "dev.yaml"):
        (tmp_path / "values" / name).write_text((ROOT / "values" / name).read_text())
    return _Env(tmp_path)


def test_write_and_restore_are_conflict_safe(env):
    path = env.values_paths[-1]
    path.chmod(0o600)
    change = plan_edit(env, {("mode",): "distributed"})
    write(change)
    assert yaml.safe_load(path.read_text())["mode"] == "distributed"
    assert path.stat().st_mode & 0o777 == 0o600  # a private overlay stays private
    assert restore(change) and path.read_text() == change.before
    write(change)
    path.write_text(path.read_text() + "# someone else\n")
    assert restore(change) is False and path.read_text().endswith("# someone else\n")
    with pytest.raises(Conflict, match="changed since the plan"):
        write(change)


def test_a_symlinked_overlay_is_refused(env):
    path = env.values_paths[-1]
    real = path.with_name("real.yaml")
    path.rename(real)
    path.symlink_to(real.name)
    with pytest.raises(InvalidInput, match="symbolic link"):
        plan_edit(env, {("mode",): "distributed"})


def test_workers_under_the_autoscaler_set_its_floor(env):
    from kestra_ops.workflows.scale.plan import plan_scale

    path = env.values_paths[-1]
    path.write_text(path.read_text() + textwrap.dedent("""\
        mode: distributed
        distributed:
          worker:
            resources:
              requests:
                cpu: "1"
            autoscaling:
              enabled: true
              maxReplicas: 6
        """))
    plan = plan_scale(env, workers=4)
    assert plan.autoscaled and plan.workers_key == ("distributed", "worker", "autoscaling",
                                                     "minReplicas")
    assert (plan.workers_before, plan.workers_after) == (2, 4)  # 2: the chart's default
    assert plan.describe() == ["workers' autoscaler floor (minReplicas): 2 -> 4"]
    assert plan.values.errors == 0
    above = plan_scale(env, workers=7)  # above maxReplicas: the values rule blocks it
    assert [f.rule for f in above.values.findings if f.severity == "error"] == [
        "kestra/worker-autoscaling"]


def test_the_plan_refuses_what_it_cannot_mean(env):
    from kestra_ops.workflows.scale.plan import plan_scale

    with pytest.raises(InvalidInput, match="nothing to change"):
        plan_scale(env)
    with pytest.raises(InvalidInput, match="runs standalone"):
        plan_scale(env, workers=2)
    with pytest.raises(InvalidInput, match="from 1 to"):
        plan_scale(env, mode="distributed", workers=0)
    assert not plan_scale(env, mode="standalone").changed  # the chart's default already
    env.values_paths = env.values_paths[:1]  # base only: never written by scale
    with pytest.raises(InvalidInput, match="own overlay"):
        plan_scale(env, mode="distributed")
