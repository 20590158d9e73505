"""kestra-ops init."""

from __future__ import annotations

from pathlib import Path

import click

from kestra_ops.cli.common import emit, output_option


@click.command("init")
@click.argument("directory", default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--env", "-e", "envs", default="dev,staging,production", show_default=True,
              metavar="ENV,...", help="The environments (comma-separated): one values overlay, "
              "one bucket kestra-<env> and one section of kestra-ops.yaml each.")
@click.option("--force", is_flag=True, help="Replace files that exist (never a symlink).")
@output_option()
def init_cmd(directory: Path, envs: str, force: bool, output: str) -> None:
    """Start a deployment repository in DIRECTORY (default: here).

    Writes kestra-ops.yaml (no kube context: the kubeconfig's current one is used until you
    name one), values/base.yaml and one overlay per environment (the packaged layers, with
    their comments), an example flow under flows/, a GitHub Actions workflow (values validate
    as SARIF for code scanning, flows validate), a GitLab CI job (JUnit reports) and a
    .pre-commit-config.yaml with kestra-ops's hooks. The chart is not copied: the one packaged
    with kestra-ops is used until the repository has its own charts/kestra.

    Nothing is written when a file exists (exit 2, naming them) unless --force; a symlink is
    never replaced; an interrupted init leaves nothing behind. Then: kestra-ops plan --env dev.
    """
    from kestra_ops.workflows.scaffold import init, parse_envs

    emit(init(directory, parse_envs(envs), force=force), output)
