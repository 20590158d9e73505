"""``upgrade plan``: where an environment is, the path to a target version, and what is in the
way. Reads the running version (Kestra's ``/api/v1/configs`` and the Deployment's image tag;
``from_version`` plans offline), the path from the version catalogue step by step (what each
step runs, which steps cannot be undone, the sources), the values change the next
``upgrade run`` makes (the diff of the env's overlay), the values keys the target removed, and
the flows that break (the env's flows exported from Kestra, or ``flows_dir``).

Exit 0: a path and nothing in the way; 1: flows or values the target refuses (errors); 2:
invalid input (an unknown or older target). The gates of ``upgrade run`` (a fresh verified
backup, the required environment) are listed, not checked, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops import chart
from kestra_ops.errors import KestraOpsError, OperationFailed
from kestra_ops.results import Report
from kestra_ops.upgrades.version import Version, split_tag, try_parse

CONTAINER = "kestra"


@dataclass
class Running:
    """The running version as Kestra reports it and as the Deployment's image names it."""

    version: Version | None = None
    api: str | None = None  # /api/v1/configs version
    image: str | None = None  # the kestra container's image
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"version": str(self.version) if self.version else None, "api": self.api,
                "image": self.image, "notes": list(self.notes)}


def image_tag(image: str | None) -> str | None:
    """``repo/name:tag`` -> ``tag`` (a digest reference has none)."""
    if not image or "@" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[1] if ":" in name else None


def image_version(image: str | None) -> Version | None:
    """The Kestra version an image reference's tag names (``kestra/kestra:v2.0.8-slim`` ->
    2.0.8); None for a digest, no tag, or a tag that is not a version (``latest``)."""
    return try_parse(image_tag(image))


def deployment_image(kube, env) -> str | None:
    from kestra_ops.adapters.kube_read import KubeReader

    dep = KubeReader(kube).read("deployments", env.namespace, chart.DEPLOYMENT,
                                group_version="apps/v1", missing_ok=True)
    containers = (((dep or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers") or []
    return next((c.get("image") for c in containers if c.get("name") == CONTAINER), None)


def running_version(env, *, kube=None, client=None) -> Running:
    """Kestra's own word first (what runs), the image tag second; a disagreement is a note."""
    found = Running()
    problems = []
    if kube is not None:
        try:
            found.image = deployment_image(kube, env)
        except KestraOpsError as err:
            problems.append(f"Deployment {chart.DEPLOYMENT}: {err}")
    if client is not None:
        try:
            found.api = str((client.configs() or {}).get("version") or "") or None
        except KestraOpsError as err:
            problems.append(f"Kestra's API: {err}")
    from_api, from_tag = try_parse(found.api), image_version(found.image)
    found.version = from_api or from_tag
    if from_api and from_tag and from_api != from_tag:
        found.notes.append(f"Kestra reports {from_api} but the Deployment's image tag is "
                           f"{image_tag(found.image)} "
                           "(a rollout under way, or a tag that is not the version)")
    if found.version is None:
        why = "; ".join(problems) or (f"neither Kestra ({found.api or 'no version'}) nor the "
                                      f"image ({found.image or 'none'}) names a version")
        raise OperationFailed(f"cannot tell which Kestra version {env.name} runs: {why}",
                              hint="plan offline with --from VERSION")
    found.notes += problems
    return found


def target_tag(current_tag: str | None, target: Version) -> tuple[str, str | None]:
    """The target's image tag, keeping the current tag's flavour (``-no-plugins``) on the same
    major line; across major lines a flavour is dropped, with a note (2.x names its
    plugin-less image ``-slim``: kestra-io docs, slim-image-plugins)."""
    found = split_tag(current_tag) if current_tag else None
    flavour = found[1] if found else None
    if flavour and found[0].major != target.major:
        return target.tag(), (f"the current image flavour -{flavour} is not carried to "
                              f"{target.line} (set image.tag by hand for a plugin-less image)")
    return target.tag(flavour), None


@dataclass
class UpgradePlan:
    env: str
    running: Running
    target: Version
    steps: list  # kestra_ops.upgrades.path.Step
    tag: str = ""  # the image tag of the next step
    image: str = ""  # the next step's image (the values' repository, that tag)
    overlay: object = None  # OverlayChange of the next step
    judged: Version | None = None  # the version values and flows are judged at
    values: object = None  # findings.Report: the values against ``judged``
    flows: object = None  # findings.Report: the flows against ``judged``
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requires: str | None = None
    backup_max_age: str = "60m"

    def to_report(self) -> Report:
        from kestra_ops.workflows.upgrade import render

        return render.plan_report(self)


def plan_upgrade(env, to: str, *, from_version: str | None = None,
                 flows_dir: Path | None = None, kestra_url: str | None = None,
                 insecure: bool = False, kube=None, client=None, catalogue=None,
                 judge_next: bool = False, shared_with: tuple | list = ()) -> UpgradePlan:
    """The plan (see the module doc). ``from_version``: offline (no cluster, no Kestra).
    ``judge_next`` (``upgrade run``): the values and flows are judged at the next step's
    version, what that run installs, instead of the target's. ``shared_with``: the other
    environments whose layers include this one's overlay (refused: the tag would move them
    too)."""
    from kestra_ops.upgrades import catalogue as cat_mod
    from kestra_ops.upgrades.path import plan_path
    from kestra_ops.upgrades.version import parse

    cat = catalogue or cat_mod.load()
    target = cat.target(to)
    own = []
    try:
        if from_version is not None:
            running = Running(parse(from_version, "--from"))
        else:
            if kube is None:
                from kestra_ops import wiring

                kube = wiring.kube(env)
                own.append(kube)
            if client is None:
                from kestra_ops.wiring import client_for_env

                client = client_for_env(env, kube=kube, kestra_url=kestra_url,
                                        insecure=insecure)
                own.append(client)
            running = running_version(env, kube=kube, client=client)
        steps = plan_path(cat, running.version, target)
        plan = UpgradePlan(env.name, running, target, steps, requires=env.upgrade_requires,
                           backup_max_age=env.upgrade_backup_max_age)
        if from_version is not None:
            plan.notes.append(f"offline: planned from --from {running.version}")
        if steps:
            plan.judged = steps[0].end if judge_next else target
            _values(env, plan, steps[0].end, shared_with)
            plan.flows = _flows(env, plan, cat, client if from_version is None else None,
                                flows_dir)
        return plan
    finally:
        for thing in own:
            thing.close()


def _values(env, plan: UpgradePlan, end: Version, shared_with=()) -> None:
    """The overlay change and image of the next step, and the merged values checked at
    ``plan.judged``."""
    from kestra_ops.upgrades.values_rules import version_hits
    from kestra_ops.values.findings import Finding, Report as Findings, json_path
    from kestra_ops.values.merge import load_layers
    from kestra_ops.workflows.upgrade.overlay import plan_change

    merged = load_layers(env.values_paths, [], fast=True)
    image = (merged.plain or {}).get("image") or {}
    plan.tag, note = target_tag(image.get("tag") or image_tag(plan.running.image), end)
    plan.image = f"{image.get('repository') or 'kestra/kestra'}:{plan.tag}"
    if note:
        plan.notes.append(note)
    plan.overlay = plan_change(env, plan.tag, shared_with=shared_with)
    values = dict(merged.plain or {})
    values["image"] = {**image, "tag": plan.tag}
    report = Findings(target=f"values of {env.name} for Kestra {plan.judged}", env=env.name,
                      layers=list(merged.layers))
    for hit in version_hits(values, plan.judged, env.name):
        report.findings.append(Finding(hit.rule, hit.severity, hit.message, json_path(hit.path),
                                       merged.locate(hit.path), hit.hint))
    plan.values = report


def _flows(env, plan: UpgradePlan, cat, client, flows_dir: Path | None):
    """The flows against ``plan.judged``: ``flows_dir`` when given, else the env's flows
    exported from Kestra (None offline without a directory: said in the notes)."""
    from kestra_ops.upgrades.flow_rules import check_flows
    from kestra_ops.values.findings import Report as Findings
    from kestra_ops.workflows.flows.local import read_flows
    from kestra_ops.workflows.flows.remote import read_zip
    from kestra_ops.workflows.flows.yamldoc import parse_flow
    from kestra_ops.yamlio import YamlLoadError

    if flows_dir is not None:
        flows, found = read_flows(flows_dir)
        where = str(flows_dir)
    elif client is not None:
        flows, found = [], []
        try:
            exported = read_zip(client.export_flows(), "flows export")
        except KestraOpsError as err:
            plan.notes.append(f"flows not checked: the export from Kestra failed ({err})")
            plan.warnings.append(f"the flows of {env.name} were not checked against "
                                 f"{plan.judged}: {err}")
            return None
        for name, source in exported:
            try:
                flows.append(parse_flow(source, f"{env.name}:{name}"))
            except YamlLoadError as err:
                from kestra_ops.values.findings import Finding

                found.append(Finding(err.rule, "error", err.detail, "$", err.location, err.hint))
        where = f"the flows of {env.name} (exported from Kestra)"
    else:
        plan.notes.append("flows not checked (offline: give --flows DIR to check a directory)")
        return None
    report = Findings(target=f"{where} for Kestra {plan.judged}", env=env.name)
    report.findings = found + check_flows(flows, cat, plan.judged, plan.running.version)
    plan.notes.append(f"{len(flows)} flow(s) checked against {plan.judged}")
    return report


__all__ = ["Running", "UpgradePlan", "plan_upgrade", "running_version"]
