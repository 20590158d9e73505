"""values render / validate / rules: which layers, which environment, where the output goes.

``validate_report`` and ``rules_report`` return the :class:`kestra_ops.results.Report` the CLI
prints in any format; ``render_values`` returns the rendered YAML (``values render`` prints YAML,
not a report), written to a file when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)

from kestra_ops import results
from kestra_ops.errors import InvalidInput
from kestra_ops.settings import Config, Environment
from kestra_ops.values.findings import Report, exit_code
from kestra_ops.values.validate import validate_layers

if TYPE_CHECKING:  # merging and masking only when rendering: a cached validation needs neither
    from typing import Iterable
    from kestra_ops.values.merge import Merged


def schema_path(env_or_config: Environment | Config, chart: Path | None = None) -> Path:
    if chart is None:
        chart = env_or_config.chart_path  # the project's, else the packaged chart
    return chart / "values.schema.json"


def validate_env(env: Environment, extra: Iterable[Path] = (), sets: Iterable[str] = (), *,
                 use_cache: bool = True) -> Report:
    """Validate an environment's merged layers (plus extra files and --set)."""
    paths = [*env.values_paths, *extra]
    return validate_layers(paths, schema_path(env), env.name, target=f"env:{env.name}", sets=sets,
                           use_cache=use_cache)


def validate_files(config: Config, files: Iterable[Path], env: str | None = None,
                   chart: Path | None = None, *, use_cache: bool = True) -> list[Report]:
    """Validate each file. An overlay that kestra-ops.yaml lists for an environment is validated
    on top of that environment's earlier layers; any other file on its own, with the rules of
    ``env`` (or of the environment its name gives, or production's when none)."""
    reports = []
    known = set(config.env_names)
    if env is not None and env not in known:
        config.environment(env)  # raises: unknown environment, naming the known ones
    for file in files:
        owner = config.layer_owner(file)
        if owner and env in (None, owner[0]):
            name, index = owner
            environment = config.environment(name)
            layers = list(environment.values_paths[: index + 1])
            schema = chart / "values.schema.json" if chart else schema_path(environment)
            reports.append(validate_layers(layers, schema, name, target=str(file),
                                           use_cache=use_cache))
            continue
        rules_env = env or (file.stem if file.stem in known else None)
        schema = chart / "values.schema.json" if chart else schema_path(config)
        reports.append(validate_layers([file], schema, rules_env, target=str(file),
                                       use_cache=use_cache))
    return reports


def validate_stack(config: Config, layers: list[Path], sets: list[str], env: str | None = None,
                   chart: Path | None = None, *, use_cache: bool = True) -> Report:
    """``layers`` merged in order (as ``helm lint -f A -f B``), ``sets`` on top, validated as one
    with the rules of ``env`` (or of the environment the last layer's name gives, or
    production's when none)."""
    known = set(config.env_names)
    if env is not None and env not in known:
        config.environment(env)  # raises: unknown environment, naming the known ones
    rules_env = env or (layers[-1].stem if layers[-1].stem in known else None)
    schema = chart / "values.schema.json" if chart else schema_path(config)
    target = " ".join(f"-f {p}" for p in layers) + "".join(" --set ..." for _ in sets[:1])
    return validate_layers(layers, schema, rules_env, target=target, sets=sets,
                           use_cache=use_cache)


def findings_report(command: str, env: str | None, reports: list[Report]) -> results.Report:
    """Validation findings (one :class:`Report` per target) as the command's result: exit 0
    clean, 1 any error, 2 any unreadable file. Its text is the findings and one status line per
    target; its JSON keeps the earlier document's keys ("tool", "version", "reports")."""
    from kestra_ops import __version__

    status = results.worst(
        results.FAIL if r.errors or r.unreadable else results.WARN if r.warnings else results.PASS
        for r in reports)
    return results.Report(command, env, status=status, exit_code=exit_code(reports),
                          findings=list(reports),
                          data={"tool": "kestra-ops", "version": __version__})


def validate_report(config: Config, files: Iterable[Path], env: str | None = None,
                    chart: Path | None = None, *, environment: Environment | None = None,
                    layers: Iterable[Path] = (), sets: Iterable[str] = (),
                    use_cache: bool = True) -> results.Report:
    """``values validate``: each of ``files`` (:func:`validate_files`); or the merged layers of
    ``environment`` (:func:`validate_env`) with ``layers`` and ``sets`` on top; or, without an
    environment, ``layers`` merged in order with ``sets`` on top (:func:`validate_stack`)."""
    files, layers, sets = list(files), list(layers), list(sets)
    if files and (layers or sets):
        raise InvalidInput("give FILE arguments, or -f/--values layers and --set, not both")
    if files:
        reports = validate_files(config, files, env, chart, use_cache=use_cache)
    elif environment is not None:
        reports = [validate_env(environment, layers, sets, use_cache=use_cache)]
    elif layers:
        reports = [validate_stack(config, layers, sets, env, chart, use_cache=use_cache)]
    else:
        raise InvalidInput("give FILE arguments, -f/--values FILE or --env ENV")
    report = findings_report("values validate", env, reports)
    if environment is not None:  # its settings, too (minio.secure: false outside dev)
        report.warnings.extend(environment.warnings)
    return report


def rules_report() -> results.Report:
    """``values rules``: every rule values validate and chart lint can report, with its title
    and help (text: one rule a line, its help below it)."""
    from kestra_ops.values.catalog import RULES

    lines = []
    for rule, (title, help_) in RULES.items():
        lines += [f"{rule:32} {title}", f"{'':32} {help_}"]
    return results.Report("values rules", sections=[results.Section("", lines)],
                          data={"rules": [{"rule": r, "title": t, "help": h}
                                          for r, (t, h) in RULES.items()]})


@dataclass
class Rendered:
    """The rendered values of an environment: the text, and where it went."""

    merged: Merged
    text: str
    secret_paths: list[tuple] = field(default_factory=list)

    written: Path | None = None  # the file written (None: the text is for stdout)
    notice: str = ""  # what to tell on stderr (masked secrets, the file written)

    @property
    def has_secrets(self) -> bool:
        return bool(self.secret_paths)


def render_values(env: Environment, extra: Iterable[Path] = (), sets: Iterable[str] = (), *,
                  out: Path | None = None, fmt: str = "yaml") -> Rendered:
    """``values render``: YAML (comments kept) or JSON (``fmt``), for stdout (literal secrets
    masked), or written to ``out`` (the secrets kept; mode 0600 always: rendered values may
    hold a secret nobody marked). A place that cannot hold the file is :class:`InvalidInput`."""
    if fmt not in ("yaml", "json"):
        raise InvalidInput(f"values render prints yaml or json, not {fmt!r}")
    if out is None:
        rendered = render(env, extra, sets, redact=True, fmt=fmt)
        if rendered.has_secrets:
            rendered.notice = (f"warning: {len(rendered.secret_paths)} plaintext secret(s) "
                               "masked in this output; use -O/--out-file FILE to write them "
                               "(0600)")
        return rendered
    _check_target(out)
    from kestra_ops.fileio import write_atomic

    rendered = render(env, extra, sets, fmt=fmt)
    try:
        write_atomic(out, rendered.text, secret=True)
    except OSError as err:
        raise InvalidInput(f"--out-file {out}: cannot write: {err.strerror or err}") from None
    held = ", holds secrets" if rendered.has_secrets else ""
    rendered.written = out
    rendered.notice = f"wrote {out} (0600{held}) from {' + '.join(rendered.merged.layers)}"
    return rendered


def _check_target(out: Path) -> None:
    """Refuse, before rendering, a file name that cannot take a rendered file: a directory,
    anything but a regular file (a device, a FIFO), a folder that is a file."""
    import os
    import stat

    try:
        st = os.stat(out)
    except FileNotFoundError:
        parent = out.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if parent.exists() and not parent.is_dir():
            raise InvalidInput(f"--out-file {out}: {parent} is not a directory") from None
        return
    except OSError as err:
        raise InvalidInput(f"--out-file {out}: {err.strerror or err}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"--out-file {out}: is a directory (name a file in it)")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"--out-file {out}: not a regular file")


def render(env: Environment, extra: Iterable[Path] = (), sets: Iterable[str] = (), *,
           redact: bool = False, fmt: str = "yaml") -> Rendered:
    """Merge the env's layers (+ extra files, + --set) into one YAML (or JSON) document."""
    from kestra_ops.redact import MASK, literal_secrets, mask_embedded
    from kestra_ops.values.merge import copy_tree, load_layers

    merged = load_layers([*env.values_paths, *extra], sets)
    if merged.data is None:
        raise InvalidInput(f"environment {env.name!r}: its values layers are empty")
    secrets = literal_secrets(merged.plain)
    data = merged.data
    if redact and secrets:
        data = copy_tree(data)
        for path in secrets:
            node = data
            for part in path[:-1]:
                node = node[part]
            value = node[path[-1]]
            shown = mask_embedded(value) if isinstance(value, str) else value
            # a URL keeps all but its password; a value under a secret key goes entirely
            node[path[-1]] = shown if shown != value and _only_embedded(node, path) else MASK
    if fmt == "json":
        import json

        from kestra_ops.yamlio import to_plain

        text = json.dumps(to_plain(data), indent=2, ensure_ascii=False) + "\n"
    else:
        text = dump_yaml(data, header=_header(env, merged))
    return Rendered(merged, text, secrets)


def _only_embedded(parent, path: tuple) -> bool:
    """``path`` (a child of ``parent``) is a secret only for what its string holds: not for
    its key, nor as the value of a secret-named env var."""
    from kestra_ops.redact import is_secret_env_entry, is_secret_key

    if path[-1] == "value" and isinstance(parent, dict) and is_secret_env_entry(parent):
        return False
    return not any(isinstance(p, str) and is_secret_key(p) for p in path)


def _header(env: Environment, merged: Merged) -> str:
    layers = ", ".join(merged.layers)
    return (f"# Rendered by kestra-ops for environment {env.name!r} from: {layers}\n"
            "# Do not edit: change the layers and render again.\n")


def dump_yaml(data, header: str = "") -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(data, buf)
    return header + buf.getvalue()
