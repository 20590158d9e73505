"""The stand-in helm executable (see tests/fakes/helm_standin.py, which installs it).

Standard library and PyYAML only: it runs as its own process for every helm call. Every argv is
appended as a JSON line to $KESTRA_OPS_TEST_HELM_LOG; releases live in $KESTRA_OPS_TEST_HELM_STATE;
$KESTRA_OPS_TEST_HELM_VERSION picks Helm 3 or 4 behaviour; template/lint/dependency/show/package
run the real helm at $KESTRA_OPS_TEST_HELM_REAL.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LOG, STATE, VERSION, REAL, FAULT, CLUSTER = (f"KESTRA_OPS_TEST_HELM_{n}" for n in
                                             ("LOG", "STATE", "VERSION", "REAL", "FAULT",
                                              "CLUSTER"))
COMMITS = {"v4.1.4": "05fa37973dc9e42b76e1d2883494c87174b6074f",
           "v3.17.3": "e4da49785aa6e6ee2b86efd5dd9e43400318262b"}
DELEGATED = {"template", "lint", "dependency", "dep", "show", "package"}
GLOBAL_VALUE = {"--kube-context", "--kubeconfig", "--namespace", "-n", "--kube-apiserver",
                "--kube-token", "--kube-as-user", "--kube-ca-file", "--registry-config",
                "--repository-config", "--repository-cache"}
GLOBAL_BOOL = {"--debug", "--kube-insecure-skip-tls-verify"}
ALIASES = {"-n": "namespace", "-o": "output", "-f": "values", "-i": "install", "-a": "all"}
# command -> (flags taking a value, boolean flags, flags with an optional value)
FLAGS = {
    # flags whose effect the stand-in does not model (--set, --reuse-values, ...) are refused
    "upgrade": ({"--values", "-f", "--timeout", "--output", "-o", "--history-max"},
                {"--install", "-i", "--wait-for-jobs", "--create-namespace", "--cleanup-on-fail",
                 "--no-hooks", "--atomic", "--rollback-on-failure", "--force-conflicts"},
                {"--wait", "--dry-run"}),
    "rollback": ({"--timeout", "--history-max"},
                 {"--wait-for-jobs", "--cleanup-on-fail", "--no-hooks", "--force-conflicts"},
                 {"--wait", "--dry-run"}),
    "history": ({"--max", "--output", "-o"}, set(), set()),
    "status": ({"--revision", "--output", "-o"}, {"--show-desc", "--show-resources"}, set()),
    "get values": ({"--revision", "--output", "-o"}, {"--all", "-a"}, set()),
    "get manifest": ({"--revision"}, set(), set()),
    "version": ({"--template"}, {"--short", "--client", "-c"}, set()),
}


class Exit(Exception):
    def __init__(self, code: int, stderr: str = ""):
        super().__init__(stderr)
        self.code, self.stderr = code, stderr


def now() -> str:
    """Go's RFC 3339 with nanoseconds, trailing zeros trimmed, as helm's JSON carries it."""
    ns = time.time_ns()
    base = _dt.datetime.fromtimestamp(ns // 10**9, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ns % 10**9:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def go_json(data) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ------------------------------------------------------------------------------ state
class State:
    """The release store: one JSON file, locked while read-modify-written."""

    def __init__(self, path):
        self.path = Path(path)

    @contextmanager
    def locked(self):
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            yield data
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.path)  # readers without the lock never see a partial file

    def load(self) -> dict:
        data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        data.setdefault("releases", {})
        data.setdefault("faults", {})
        return data


def record(name, namespace, version, status, description, meta, config, manifest) -> dict:
    t = now()
    return {"name": name, "namespace": namespace, "version": version,
            "info": {"first_deployed": t, "last_deployed": t, "description": description,
                     "status": status},
            "chart": {"metadata": meta, "lock": None, "templates": [], "values": {},
                      "schema": None, "files": []},
            "config": config, "manifest": manifest}


def take_fault(state: State, command: str) -> dict | None:
    raw = os.environ.get(FAULT, "")
    for spec in filter(None, raw.split(",")):
        cmd, mode, *rest = spec.split(":", 2) + [""]
        if cmd == command and mode:
            arg = rest[0] or None
            return {"mode": mode, "message": arg if mode == "fail" else None,
                    "seconds": float(arg) if mode == "hang" and arg else None}
    with state.locked() as data:
        fault = data["faults"].get(command)
        if fault and fault.get("times") is not None:
            fault["times"] -= 1
            if fault["times"] <= 0:
                del data["faults"][command]
        return fault


# ------------------------------------------------------------------------------ the executable
def parse(argv: list[str], major: int) -> tuple[str, list[str], dict]:
    words, opts, i = [], {}, 0
    command = None
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            spec = FLAGS.get(command or "", (set(), set(), set()))
            if name in GLOBAL_VALUE or name in spec[0]:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise Exit(1, f"Error: flag needs an argument: {name}")
                    value = argv[i]
                opts.setdefault(ALIASES.get(name, name.lstrip("-")), []).append(value)
            elif name in GLOBAL_BOOL or name in spec[1] or name in spec[2]:
                if name in ("--rollback-on-failure", "--force-conflicts") and major < 4:
                    raise Exit(1, f"Error: unknown flag: {name}")
                if name == "--wait" and eq and major < 4 and value not in ("true", "false"):
                    raise Exit(1, f'Error: invalid argument "{value}" for "--wait" flag: '
                               f'strconv.ParseBool: parsing "{value}": invalid syntax')
                opts[ALIASES.get(name, name.lstrip("-"))] = value if eq else True
            else:
                raise Exit(1, f"Error: unknown flag: {name}" if name.startswith("--") else
                           f"Error: unknown shorthand flag: {name[1:2]!r} in {name}")
        else:
            words.append(arg)
            if command is None or (command == "get" and len(words) == 2):
                command = " ".join(words)
        i += 1
    return command or "", words[len((command or "").split()):], opts


def main(argv: list[str]) -> int:
    if os.environ.get(LOG):
        with open(os.environ[LOG], "a") as fh:
            fh.write(json.dumps(argv) + "\n")
    version = os.environ.get(VERSION, "v4.1.4")
    major = int(version.lstrip("v").split(".")[0])
    first = next((a for a in argv if not a.startswith("-")), "")
    if first in DELEGATED:
        real = os.environ.get(REAL)
        if not real:
            print(f"Error: stand-in helm: no real helm to run {first!r} (${REAL})", file=sys.stderr)
            return 1
        return subprocess.run([real, *argv]).returncode
    try:
        command, args, opts = parse(argv, major)
        if command == "version":
            return version_cmd(version, opts)
        if not os.environ.get(STATE):
            raise Exit(1, f"Error: stand-in helm: ${STATE} is not set")
        state = State(os.environ[STATE])
        if command in ("history", "status", "get values", "get manifest"):
            return show(state, args, opts, major, command)
        if command not in ("upgrade", "rollback"):
            raise Exit(1, f"Error: stand-in helm does not implement {command!r}")
        return (upgrade if command == "upgrade" else rollback)(state, args, opts, major)
    except Exit as done:
        if done.stderr:
            print(done.stderr, file=sys.stderr)
        return done.code


def version_cmd(version: str, opts: dict) -> int:
    commit = COMMITS.get(version) or hashlib.sha1(version.encode()).hexdigest()
    info = {"Version": version, "GitCommit": commit, "GitTreeState": "clean",
            "GoVersion": "go1.25.9" if version.startswith("v4") else "go1.23.7"}
    if version.startswith("v4"):
        info["KubeClientVersion"] = "v1.35"
    if "template" in opts:
        sys.stdout.write(re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: info.get(m[1], "<no value>"),
                                opts["template"][-1]))
    elif opts.get("short"):
        print(f"{version}+g{commit[:7]}")
    else:
        print("version.BuildInfo{" + ", ".join(f'{k}:"{v}"' for k, v in info.items()) + "}")
    return 0


def _one(opts, name, default=None):
    value = opts.get(name)
    return value[-1] if isinstance(value, list) else default


def _key(args, opts, need: int, command: str) -> tuple[str, str]:
    if len(args) < need:
        raise Exit(1, f'Error: "helm {command}" requires {need} argument(s)')
    return f"{_one(opts, 'namespace', 'default')}/{args[0]}", args[0]


def show(state, args, opts, major, what: str) -> int:
    """history, status, get values, get manifest: read-only, in helm's JSON shapes."""
    key, _ = _key(args, opts, 1, what)
    recs = state.load()["releases"].get(key) or []
    revision = int(_one(opts, "revision", 0))
    rec = recs[-1] if recs and not revision else \
        next((r for r in recs if r["version"] == revision), None)
    if rec is None:
        raise Exit(1, "Error: release: not found")
    if what == "history":
        rows = [{"revision": r["version"], "updated": r["info"].get("last_deployed", ""),
                 "status": r["info"]["status"],
                 "chart": f"{r['chart']['metadata']['name']}-{r['chart']['metadata']['version']}",
                 "app_version": r["chart"]["metadata"].get("appVersion", ""),
                 "description": r["info"]["description"]}
                for r in recs[-int(_one(opts, "max", 256)):]]
        if major >= 4:  # Helm 4 omits a zero time; Helm 3 prints ""
            rows = [{k: v for k, v in row.items() if k != "updated" or v} for row in rows]
        print(go_json(rows) if _one(opts, "output") == "json" else
              "\n".join("\t".join(map(str, row.values())) for row in rows))
    elif what == "status":  # helm strips the chart from status output
        info = {**rec["info"], **({"deleted": ""} if major < 4 else {})}
        print(go_json({**{k: v for k, v in rec.items() if k != "chart"}, "info": info}))
    elif what == "get values":
        print(go_json(rec.get("config") or None))
    else:
        print(rec["manifest"])
    return 0


def _make_deployed(recs: list, new: dict) -> None:
    """Like helm: every deployed revision becomes superseded, the new one deployed."""
    for rec in recs:
        if rec["info"]["status"] == "deployed":
            rec["info"]["status"] = "superseded"
    new["info"]["status"] = "deployed"


def _rollback_to(recs: list, target: dict) -> dict:
    new = json.loads(json.dumps(target))
    new.update(version=recs[-1]["version"] + 1)
    new["info"].update(first_deployed=recs[0]["info"].get("first_deployed", now()),
                       last_deployed=now(), description=f"Rollback to {target['version']}")
    _make_deployed(recs, new)
    recs.append(new)
    return new


def _hang(fault: dict, *, cancellable: bool) -> bool:
    """Sleep as a stuck helm would. ``cancellable`` (upgrade, like helm's): SIGINT/SIGTERM end
    the wait and True is returned; otherwise (rollback) a signal kills the process, as helm's."""
    cancelled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, (lambda *_: cancelled.append(True)) if cancellable else signal.SIG_DFL)
    deadline = time.monotonic() + (fault.get("seconds") or 3600)
    while not cancelled and time.monotonic() < deadline:
        if fault.get("until") and Path(fault["until"]).exists():
            break
        time.sleep(0.02)
    return bool(cancelled)


def _values(opts: dict) -> dict:
    import yaml

    merged: dict = {}

    def merge(base, over):
        for k, v in over.items():
            if v is None:
                base.pop(k, None)
            elif isinstance(v, dict) and isinstance(base.get(k), dict):
                merge(base[k], v)
            else:
                base[k] = v
    for path in opts.get("values", []):
        try:
            merge(merged, yaml.safe_load(Path(path).read_text()) or {})
        except OSError:
            raise Exit(1, f"Error: open {path}: no such file or directory") from None
    return merged


def upgrade(state, args, opts, major) -> int:
    key, name = _key(args, opts, 2, "upgrade")
    atomic = bool(opts.get("atomic") or opts.get("rollback-on-failure"))
    if opts.get("atomic") and major >= 4:
        print("Flag --atomic has been deprecated, use --rollback-on-failure instead",
              file=sys.stderr)
    chart = Path(args[1])
    try:
        import yaml

        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    except OSError:
        raise Exit(1, f'Error: path "{chart}" not found') from None
    meta = {k: meta[k] for k in ("apiVersion", "name", "version", "appVersion") if k in meta}
    config = _values(opts)
    manifest = render(name, key.split("/")[0], chart, opts)
    dry = opts.get("dry-run") not in (None, "none", "false")
    with state.locked() as data:
        recs = data["releases"].setdefault(key, [])
        install = not recs
        verb = "INSTALLATION" if install else "UPGRADE"
        if install and not opts.get("install"):
            raise Exit(1, f'Error: UPGRADE FAILED: "{name}" has no deployed releases')
        if recs and recs[-1]["info"]["status"].startswith("pending-"):
            raise Exit(1, f"Error: {verb} FAILED: another operation (install/upgrade/rollback) "
                          "is in progress")
        new = record(name, key.split("/")[0], len(recs) and recs[-1]["version"] + 1 or 1,
                     "pending-install" if install else "pending-upgrade",
                     "Initial install underway" if install else "Preparing upgrade",
                     meta, config, manifest)
        if dry:
            new["info"]["description"] = "Dry run complete"
            print(go_json(new))
            return 0
        recs.append(new)
    fault = take_fault(state, "upgrade") or {}
    error = (fault.get("message") or "context deadline exceeded") \
        if fault.get("mode") == "fail" else None
    if fault.get("mode") == "hang" and _hang(fault, cancellable=True):
        print(f"Release {name} has been cancelled.")
        error = "context canceled"
    with state.locked() as data:
        recs = data["releases"][key]
        mine = out = recs[-1]
        if error is None:
            error = _sync(opts, name, key, recs[-2]["manifest"] if len(recs) > 1 else "",
                          mine["manifest"])
        if error is None:
            _make_deployed(recs, mine)
            mine["info"].update(last_deployed=now(), description="Install complete" if install
                                else "Upgrade complete")
        else:
            mine["info"].update(status="failed", description=(
                f'Release "{name}" failed: {error}' if install else
                f'Upgrade "{name}" failed: {error}'))
            why = "rollback-on-failure" if major >= 4 else "atomic"
            if major >= 4:
                print(f'level=WARN msg="{"install" if install else "upgrade"} failed" '
                      f'name={name} error="{error}"', file=sys.stderr)
            if atomic and install:
                del data["releases"][key]
                error = f"release {name} failed, and has been uninstalled due to {why} being " \
                        f"set: {error}"
            elif atomic:
                good = [r for r in recs if r["info"]["status"] in ("deployed", "superseded")]
                if good:
                    _rollback_to(recs, good[-1])
                    error = f"release {name} failed, and has been rolled back due to {why} " \
                            f"being set: {error}"
                else:
                    error = f"an error occurred while rolling back the release. original " \
                            f"upgrade error: {error}: unable to find a previously successful " \
                            "release"
    if error is not None:  # raised after the with-block, so the state above is saved
        raise Exit(1, f"Error: {verb} FAILED: {error}")
    if _one(opts, "output") == "json":
        print(go_json(out))
    else:
        print(f'Release "{name}" has been upgraded. Happy Helming!\nNAME: {name}\n'
              f"NAMESPACE: {out['namespace']}\nSTATUS: deployed\nREVISION: {out['version']}")
    return 0


def render(name: str, namespace: str, chart: Path, opts: dict) -> str:
    """The real ``helm template`` of the chart with the same values, when a real helm is set."""
    real = os.environ.get(REAL)
    if not real:
        return f"# stand-in: no real helm to render {chart}\n"
    files = [a for f in opts.get("values", []) for a in ("--values", f)]
    proc = subprocess.run([real, "template", name, str(chart), "--namespace", namespace, *files],
                          capture_output=True, text=True)
    if proc.returncode:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise Exit(1, "Error: UPGRADE FAILED: " + (lines[-1].removeprefix("Error: ")
                                                    if lines else "render failed"))
    return _without_hooks(proc.stdout)


def _sync(opts: dict, name: str, key: str, old: str, new: str) -> str | None:
    """Apply the new manifest to the fake cluster, as helm does (helm_standin_cluster.py);
    the error message when the API server refuses it."""
    path = os.environ.get(CLUSTER)
    if not path:
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("helm_standin_cluster", path)
    cluster = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cluster)
    try:
        cluster.sync(opts, name, key.split("/")[0], old, new)
    except cluster.ClusterError as err:
        return str(err)
    return None


def _without_hooks(text: str) -> str:
    """Like helm's stored manifest (`helm get manifest`): hook objects are kept apart."""
    docs = [doc for doc in text.split("\n---\n") if "helm.sh/hook:" not in doc]
    return "\n---\n".join(docs)


def rollback(state, args, opts, major) -> int:
    key, name = _key(args, opts, 1, "rollback")
    with state.locked() as data:
        recs = data["releases"].get(key)
        if not recs:
            raise Exit(1, "Error: release: not found")
        wanted = int(args[1]) if len(args) > 1 and args[1] != "0" else recs[-1]["version"] - 1
        target = next((r for r in recs if r["version"] == wanted), None)
        if target is None:
            raise Exit(1, f"Error: release has no {wanted} version")
        pending = json.loads(json.dumps(target))
        pending["version"] = recs[-1]["version"] + 1
        pending["info"].update(status="pending-rollback", last_deployed=now(),
                               description=f"Rollback to {wanted}")
        recs.append(pending)
    fault = take_fault(state, "rollback") or {}
    error = (fault.get("message") or "context deadline exceeded") \
        if fault.get("mode") == "fail" else None
    if fault.get("mode") == "hang":
        _hang(fault, cancellable=False)
    with state.locked() as data:
        recs = data["releases"][key]
        mine = recs.pop()
        if not error:
            error = _sync(opts, name, key, recs[-1]["manifest"], mine["manifest"])
        if error:
            mine["info"].update(status="failed", description=f'Release "{name}" failed: {error}')
        else:
            _make_deployed(recs, mine)
        recs.append(mine)
    if error:
        raise Exit(1, f"Error: release {name} failed: {error}")
    print("Rollback was a success! Happy Helming!")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
