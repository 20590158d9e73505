"""Kestra rules about how many server pods run: the database connections their pools may open,
and the executor/scheduler counts of distributed mode.

The facts, with their sources:

* Every ``datasources.<name>`` section is one HikariCP pool per pod, opened at startup:
  Micronaut's Hikari ``DatasourceFactory`` builds a data source per datasource configuration
  as a ``@Context`` (eager) bean (micronaut-projects/micronaut-sql
  jdbc-hikari/src/main/java/io/micronaut/configuration/jdbc/hikari/DatasourceFactory.java).
  Our chart configures two (``datasources.default`` and ``datasources.postgres``, see
  rules.DS_SECTIONS), so each Kestra pod holds two pools; ``kestra.datasources.*`` is not a
  Micronaut datasource and is not counted.
* A pool's size is its ``maximum-pool-size``, 10 by default, and it keeps ``minimum-idle``
  (10 by default) connections open: "Each Kestra instance will open a pool of up to the
  maximum-pool-size (10 by default)" (https://kestra.io/docs/configuration-guide/database,
  "Connection pool size"); HikariCP's README: maximumPoolSize "Default: 10", minimumIdle
  "Default: same as maximumPoolSize" (brettwooldridge/HikariCP README.md).
* Worker threads do not hold connections: the JDBC queue and repositories borrow one from the
  pool for each transaction (kestra-io/kestra jdbc/src/main/java/io/kestra/jdbc/
  JooqDSLContextWrapper.java, runner/JdbcQueue.java), so ``--thread N`` makes threads wait for
  the pool, never open more connections; the pool size times the pods is the bound, which is
  what the issue's "worker threads x replicas" budget comes to.
* PostgreSQL accepts ``max_connections`` connections, "typically 100", and keeps
  ``superuser_reserved_connections`` (default 3) of them for superusers
  (https://www.postgresql.org/docs/15/runtime-config-connection.html). The bundled
  kestra-postgres runs the postgres image without settings (templates/postgres-statefulset.yaml),
  so 100; its ``kestra`` user is the image's superuser, but the reserved slots are left to the
  operator (the conservative reading). For another database (``postgres.enabled: false`` or a
  ``database.mode`` other than bundled) the values do not say its max_connections: no budget
  is judged.
* During a rollout each Deployment runs one pod more (maxSurge 1, templates/_helpers.tpl
  ``kestra.deployment``), each with its pools.
* Executor and scheduler counts: for the JDBC backend Kestra documents the "Medium-sized
  deployment, where high availability is not required ... All server components communicate
  through the database" (https://kestra.io/docs/architecture/deployment-architecture); its
  1.x high-availability page asks for the Kafka and Elasticsearch architecture
  (https://kestra.io/docs/administrator-guide/high-availability); the executor "rarely needs
  to be scaled. However, in deployments with a very large number of executions, you can scale
  Executors horizontally" (https://kestra.io/docs/1.3/architecture/server-components). Kestra's
  JDBC code locks triggers and queue rows with ``FOR UPDATE SKIP LOCKED``
  (jdbc/.../repository/AbstractJdbcTriggerRepository.java, runner/JdbcQueue.java), so a second
  one is not refused, only warned about; zero of either stops executions or triggers.
"""

from __future__ import annotations

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Iterator

from kestra_ops.values.rules import MISSING, Context, Hit

PG_MAX_CONNECTIONS = 100  # PostgreSQL's default max_connections
PG_SUPERUSER_RESERVED = 3  # superuser_reserved_connections' default
# kept for kestra-ops beside Kestra: the backup run (pg_dump, one connection; its psycopg
# checks, one) and one operator session (psql, `kestra-ops check`)
OPS_HEADROOM = 3
HIKARI_DEFAULT_POOL = 10
POOL_KEYS = ("maximum-pool-size", "maximumPoolSize")
# the chart's defaults (charts/kestra/values.yaml; tests/unit/test_values_scale.py compares)
CHART_REPLICAS = {"standalone": 1, "webserver": 2, "executor": 1, "scheduler": 1, "worker": 2}
CHART_WORKER_MAX = 4  # distributed.worker.autoscaling.maxReplicas
COMPONENTS = ("webserver", "executor", "scheduler", "worker")


def _count(value, default: int) -> int | None:
    if value is MISSING or value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None  # not a count: the schema reports it


def kestra_pods(ctx: Context) -> dict[str, int] | None:
    """Most pods of each Kestra component outside a rollout (the autoscaler's maximum for
    workers it scales); None when a count is unreadable."""
    if ctx.get(("mode",)) != "distributed":
        n = _count(ctx.get(("standalone", "replicas")), CHART_REPLICAS["standalone"])
        return None if n is None else {"standalone": n}
    pods = {}
    for component in COMPONENTS:
        n = _count(ctx.get(("distributed", component, "replicas")), CHART_REPLICAS[component])
        if component == "worker" and ctx.get(("distributed", "worker", "autoscaling",
                                               "enabled")) is True:
            n = _count(ctx.get(("distributed", "worker", "autoscaling", "maxReplicas")),
                       CHART_WORKER_MAX)
        if n is None:
            return None
        pods[component] = n
    return pods


def pools(ctx: Context) -> list[tuple[str, int, bool]]:
    """(section, maximum pool size, whether the size is set) of each Micronaut datasource."""
    sections = ctx.get(("datasources",))
    found = []
    for name, section in (sections.items() if isinstance(sections, dict) else ()):
        if not isinstance(section, dict):
            continue
        size = next((section[k] for k in POOL_KEYS if k in section), MISSING)
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            found.append((f"datasources.{name}", size, True))
        else:  # unset, or a placeholder we cannot read: Hikari's default
            found.append((f"datasources.{name}", HIKARI_DEFAULT_POOL, False))
    return found


def bundled_database(ctx: Context) -> bool:
    mode = ctx.get(("database", "mode"))
    return ctx.get(("postgres", "enabled")) is not False and mode in (MISSING, None, "bundled")


def connection_budget(ctx: Context) -> Iterator[Hit]:
    if not bundled_database(ctx):
        return
    pods, found = kestra_pods(ctx), pools(ctx)
    if not pods or not found:
        return
    per_pod = sum(size for _, size, _ in found)
    allowed = PG_MAX_CONNECTIONS - PG_SUPERUSER_RESERVED - OPS_HEADROOM
    steady = sum(pods.values())
    rollout = steady + sum(1 for n in pods.values() if n > 0)
    sizes = " + ".join(f"{size} ({name}{'' if set_ else ', HikariCP default'})"
                       for name, size, set_ in found)
    sizes = f"({sizes})" if len(found) > 1 else sizes
    budget = (f"the bundled PostgreSQL accepts {allowed} (max_connections {PG_MAX_CONNECTIONS}"
              f" - {PG_SUPERUSER_RESERVED} superuser-reserved - {OPS_HEADROOM} kept for the "
              "backup and an operator)")
    hint = (f"set maximum-pool-size on each datasources section so that pods x pools fits "
            f"{allowed} (e.g. {max(1, allowed // (rollout * len(found)))}), or run fewer pods")
    path = ("datasources",)
    if steady * per_pod > allowed:
        yield Hit("kestra/db-connection-budget", "error" if ctx.strict else "warning",
                  f"the Kestra pods may open {steady * per_pod} database connections "
                  f"({steady} pods x {sizes}); {budget}", path, hint)
    elif rollout * per_pod > allowed:
        yield Hit("kestra/db-connection-budget", "warning",
                  f"during a rollout the Kestra pods may open {rollout * per_pod} database "
                  f"connections ({rollout} pods, one extra per Deployment, x {sizes}); {budget}",
                  path, hint)


def distributed_replicas(ctx: Context) -> Iterator[Hit]:
    if ctx.get(("mode",)) != "distributed":
        return
    stops = {"executor": "no execution moves past its creation",
             "scheduler": "no Schedule or polling trigger fires"}
    for component, effect in stops.items():
        path = ("distributed", component, "replicas")
        value = _count(ctx.get(path), CHART_REPLICAS[component])
        if value == 0:
            yield Hit("kestra/distributed-replicas", "error" if ctx.strict else "warning",
                      f"distributed.{component}.replicas is 0: {effect}", path,
                      f"run 1 {component} (0 only while Kestra is stopped on purpose)")
        elif value is not None and value > 1:
            yield Hit("kestra/distributed-replicas", "warning",
                      f"distributed.{component}.replicas is {value}: Kestra documents the "
                      "JDBC backend as the deployment \"where high availability is not "
                      "required\" (several instances of every component are its "
                      "Kafka/Elasticsearch architecture); each extra pod adds database "
                      "polling and connections", path,
                      f"keep 1 {component} unless Kestra's throughput needs more")
