"""The values change of ``scale``: ``mode`` and the workers in the env's overlay (its last values
layer), as a comment-preserving edit (:mod:`kestra_ops.workflows.overlay_edit`), and the values
after the change validated as ``values validate`` does (schema and rules; an error blocks).

What is read: the chart's own values.yaml under the env's layers (what Helm merges), so a key no
layer sets is the chart's default (``mode: standalone``, ``distributed.worker.replicas: 2``).
``--workers N`` means the distributed workers: ``distributed.worker.replicas``, or, when the
workers' HorizontalPodAutoscaler is enabled (``distributed.worker.autoscaling.enabled``), its
floor ``minReplicas`` (the autoscaler owns the count; it never runs fewer than N and may run up
to ``maxReplicas``; N above ``maxReplicas`` is refused by the values rule
kestra/worker-autoscaling). In standalone mode there are no separate workers: ``--workers``
needs ``--mode distributed`` (or an env already distributed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from kestra_ops.errors import InvalidInput

MODES = ("standalone", "distributed")
MAX_WORKERS = 1000  # a typo guard, far above any JDBC install
REPLICAS = ("distributed", "worker", "replicas")
MIN_REPLICAS = ("distributed", "worker", "autoscaling", "minReplicas")


@dataclass
class ScalePlan:
    env: str
    mode_before: str
    mode_after: str
    workers_key: tuple  # the values path --workers sets
    workers_before: Any
    workers_after: Any
    autoscaled: bool
    changes: dict = field(default_factory=dict)  # values path -> new value
    overlay: Any = None  # OverlayChange (None: nothing to change)
    values: Any = None  # values.findings.Report of the values after the change

    @property
    def changed(self) -> bool:
        return bool(self.changes) and self.overlay is not None and self.overlay.changed

    @property
    def errors(self) -> int:
        return self.values.errors if self.values is not None else 0

    def describe(self) -> list[str]:
        """What changes, one line each (the confirmation and the report show them)."""
        out = []
        if self.mode_after != self.mode_before:
            out.append(f"mode: {self.mode_before} -> {self.mode_after}")
        if self.workers_key in self.changes:
            what = ("workers' autoscaler floor (minReplicas)" if self.autoscaled
                    else "workers (replicas)")
            out.append(f"{what}: {self.workers_before} -> {self.workers_after}")
        return out


def plan_scale(env, *, mode: str | None = None, workers: int | None = None,
               shared_with: Sequence[str] = ()) -> ScalePlan:
    """The plan (see the module doc); :class:`InvalidInput` for a request that cannot be
    written (nothing asked, a bad value, --workers on standalone, an overlay a line edit cannot
    change, a symlinked overlay, an overlay other environments (``shared_with``) use too)."""
    if mode is None and workers is None:
        raise InvalidInput("nothing to change: give --mode, --workers or both")
    if mode is not None and mode not in MODES:
        raise InvalidInput(f"--mode {mode!r}: use standalone or distributed")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 1 <= workers <= MAX_WORKERS):
        raise InvalidInput(f"--workers {workers!r}: a number of workers from 1 to {MAX_WORKERS}")
    if shared_with and len(env.values_paths) >= 2:
        raise InvalidInput(f"{env.name}'s overlay {env.values_paths[-1]} is also a values layer "
                           f"of {', '.join(shared_with)}: scaling {env.name} would change "
                           "them too; nothing was written",
                           hint=f"give {env.name} an overlay of its own")
    if len(env.values_paths) < 2:  # the last layer would be the base every env shares
        raise InvalidInput(f"{env.name} has {len(env.values_paths)} values layer(s): scale "
                           "writes only an environment's own overlay (its last layer, after "
                           "the base)", hint=f"add values/{env.name}.yaml to its values in "
                                             "kestra-ops.yaml")
    current = _current(env)
    before = current.get("mode") or "standalone"
    after = mode or before
    if workers is not None and after != "distributed":
        raise InvalidInput(f"--workers sets the distributed workers, and {env.name} runs "
                           "standalone (its one server runs the tasks, sized by "
                           "standalone.workerThreads)", hint="add --mode distributed")
    worker = _get(current, ("distributed", "worker")) or {}
    autoscaled = (_get(worker, ("autoscaling", "enabled")) is True)
    key = MIN_REPLICAS if autoscaled else REPLICAS
    plan = ScalePlan(env.name, before, after, key, _get(current, key), _get(current, key),
                     autoscaled)
    if after != before:
        plan.changes[("mode",)] = after
    if workers is not None and workers != plan.workers_before:
        plan.changes[key] = plan.workers_after = workers
    if not plan.changes:
        return plan
    from kestra_ops.workflows.overlay_edit import plan_edit

    plan.overlay = plan_edit(env, plan.changes,
                             redo="set " + ", ".join(".".join(k) for k in plan.changes))
    plan.values = validate_after(env, plan.overlay)
    return plan


def _current(env) -> dict:
    """The values Helm would merge now: the chart's values.yaml, then the env's layers."""
    from kestra_ops.values.merge import load_layers

    chart_values = env.chart_path / "values.yaml"
    layers = ([chart_values] if chart_values.is_file() else []) + list(env.values_paths)
    plain = load_layers(layers, [], fast=True).plain
    return plain if isinstance(plain, dict) else {}


def _get(data, path: tuple):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def validate_after(env, overlay):
    """The env's values with ``overlay.after`` as its last layer, validated as ``values validate
    --env`` validates them (schema, then Kestra's rules; file:line of the overlay as written)."""
    from kestra_ops.values.merge import merge_docs
    from kestra_ops.values.validate import validate_merged
    from kestra_ops.workflows.values import schema_path
    from kestra_ops.yamlio import YamlDoc, load_yaml_file, load_yaml_text

    docs = [load_yaml_file(p) for p in env.values_paths[:-1]]
    docs.append(YamlDoc(overlay.path, load_yaml_text(overlay.after, overlay.shown)
                        if overlay.after.strip() else None, overlay.shown))
    merged = merge_docs(docs)
    return validate_merged(merged, schema_path(env), env.name,
                           target=f"values of {env.name} after the scale")
