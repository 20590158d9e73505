"""kestra-ops completion: the shell completion script, and what completes."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KESTRA_OPS_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_cmd(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    Commands, options, environment names (--env, from kestra-ops.yaml) and check ids
    (--only) complete. Load it in the current shell, or from the shell's start-up file:

    \b
      bash:  eval "$(kestra-ops completion bash)"     (~/.bashrc)
      zsh:   eval "$(kestra-ops completion zsh)"      (~/.zshrc)
      fish:  kestra-ops completion fish | source      (~/.config/fish/config.fish)
    """
    from click.shell_completion import get_completion_class

    from kestra_ops.cli import cli

    script = get_completion_class(shell)(cli, {}, "kestra-ops", COMPLETE_VAR).source()
    click.echo(script)


def complete_env(ctx: click.Context, param, incomplete: str) -> list:
    """The environment names of kestra-ops.yaml (the one --config names, or found here)."""
    from click.shell_completion import CompletionItem

    try:
        from kestra_ops.settings import load_config

        root = ctx.find_root()
        names = load_config(root.params.get("config_path")).env_names
    except Exception:  # noqa: BLE001 - a completion never fails: no names then
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def complete_check_ids(ctx: click.Context, param, incomplete: str) -> list:
    """Check ids, after the ids already typed (``--only pods,rea<TAB>``)."""
    from click.shell_completion import CompletionItem

    from kestra_ops.checks.registry import check_ids

    done, _, last = incomplete.rpartition(",")
    typed = set(done.split(",")) if done else set()
    prefix = f"{done}," if done else ""
    return [CompletionItem(prefix + cid) for cid in check_ids()
            if cid.startswith(last) and cid not in typed]
