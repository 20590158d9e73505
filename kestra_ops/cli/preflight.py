"""kestra-ops preflight."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (emit, env_option, helm_option, output_option, pass_state,
                                    progress_for, quiet_option)
from kestra_ops.cli.common import kube_options


@click.command("preflight")
@env_option()
@kube_options()
@helm_option()
@click.option("--skip-bucket", is_flag=True,
              help="Do not check the MinIO bucket (reported as a warning).")
@click.option("--database-reachable", is_flag=True,
              help="database.mode external: also dial the database's host and port (TCP).")
@output_option()
@quiet_option()
@pass_state
def preflight_cmd(state, env: str, helm: str | None, skip_bucket: bool,
                  database_reachable: bool, output: str, quiet: bool):
    """Check that a deploy to ENV can succeed, before anything changes.

    \b
    - the Kubernetes API answers (and its version); the namespace exists;
    - the caller may get/list/watch/create/patch/update/delete every kind the chart creates
      (helm's --wait lists and watches them), list ReplicaSets and pods (what --wait reads of
      a Deployment and a StatefulSet), and get/list/create/update/delete Secrets, in the
      namespace (one SelfSubjectAccessReview per verb and resource; each missing one named);
    - the MinIO bucket exists (credentials: KESTRA_OPS_MINIO_ACCESS_KEY and
      KESTRA_OPS_MINIO_SECRET_KEY; skipped with a warning without them);
    - the Helm release is not stuck in pending-* (an interrupted helm client);
    - database.mode cloudnativepg: CRD clusters.postgresql.cnpg.io and a running operator;
      external: its host and port (dialled only with --database-reachable).

    Nothing is written. Exit 0 when every check passes (warnings allowed), 1 when one fails.
    """
    from kestra_ops.workflows.deploy.preflight import run_preflight

    emit(run_preflight(state.environment(env), progress=progress_for(output, quiet),
                       check_bucket=not skip_bucket, helm=helm,
                       database_reachable=database_reachable), output, quiet=quiet)
