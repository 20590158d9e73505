"""values render / values validate: which layers, which environment, where the output goes."""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from kestra_ops.errors import InvalidInput
from kestra_ops.redact import MASK, literal_secrets
from kestra_ops.settings import Config, Environment
from kestra_ops.values.findings import Report
from kestra_ops.values.merge import Merged, load_layers
from kestra_ops.values.validate import validate_layers, validate_merged


def schema_path(env_or_config: Environment | Config, chart: Path | None = None) -> Path:
    if chart is None:
        if isinstance(env_or_config, Environment):
            chart = env_or_config.chart_path
        else:
            chart = env_or_config.root / "charts" / "kestra"
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


@dataclass
class Rendered:
    merged: Merged
    text: str
    secret_paths: list[tuple] = field(default_factory=list)

    @property
    def has_secrets(self) -> bool:
        return bool(self.secret_paths)


def render(env: Environment, extra: Iterable[Path] = (), sets: Iterable[str] = (), *,
           redact: bool = False) -> Rendered:
    """Merge the env's layers (+ extra files, + --set) into one YAML document."""
    merged = load_layers([*env.values_paths, *extra], sets)
    if merged.data is None:
        raise InvalidInput(f"environment {env.name!r}: its values layers are empty")
    secrets = literal_secrets(merged.plain)
    data = merged.data
    if redact and secrets:
        data = copy.deepcopy(data)
        for path in secrets:
            node = data
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = MASK
    return Rendered(merged, dump_yaml(data, header=_header(env, merged)), secrets)


def _header(env: Environment, merged: Merged) -> str:
    layers = ", ".join(merged.layers)
    return (f"# Rendered by kestra-ops for environment {env.name!r} from: {layers}\n"
            "# Do not edit: change the layers and render again.\n")


def dump_yaml(data, header: str = "") -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(data, buf)
    return header + buf.getvalue()
