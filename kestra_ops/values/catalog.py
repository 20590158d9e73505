"""Every rule kestra-ops reports on values files: id -> (title, help).

Used by the SARIF renderer (``tool.driver.rules``), ``kestra-ops values rules`` and the docs.
"""

from __future__ import annotations

RULES: dict[str, tuple[str, str]] = {
    # Reading the file
    "io/unreadable": ("File cannot be read", "The path does not exist, is a directory or is not readable."),
    "yaml/too-large": ("File too large", "Values files are a few kilobytes; larger files are refused before parsing."),
    "yaml/encoding": ("Not UTF-8", "YAML files must be UTF-8."),
    "yaml/syntax": ("Invalid YAML", "The YAML parser rejected the file."),
    "yaml/tabs": ("Tab indentation", "YAML indents with spaces; a tab cannot start a token."),
    "yaml/duplicate-key": ("Duplicate key", "A mapping defines the same key twice; the YAML spec forbids it and Helm silently keeps the last one."),
    "yaml/alias-bomb": ("Alias expansion", "Aliases expand the document beyond any plausible values file (billion laughs) or refer to themselves."),
    "yaml/too-deep": ("Nesting too deep", "The document nests deeper than any values file needs."),
    "yaml/multi-document": ("Several documents", "A values file holds a single YAML document."),
    "yaml/not-a-mapping": ("Not a mapping", "The top level of a values file must be a mapping."),
    "values/empty": ("Empty values file", "The file holds no values at all."),
    # values.schema.json
    "schema/type": ("Wrong type", "A value has the wrong JSON type for charts/kestra/values.schema.json."),
    "schema/required": ("Missing key", "A key the chart requires is missing."),
    "schema/unknown-key": ("Unknown key", "The chart does not know this key (values.schema.json forbids additional properties here)."),
    "schema/enum": ("Value not allowed", "The value is not one of the values the chart accepts."),
    "schema/range": ("Out of range", "A number is outside the range the chart accepts."),
    "schema/format": ("Bad format", "A string does not have the required form."),
    "schema/other": ("Schema violation", "values.schema.json rejects this value."),
    # Kestra rules
    "kestra/datasource-missing": ("Datasource section missing", "Kestra 1.x needs kestra.datasources.postgres, datasources.default and datasources.postgres (Micronaut 4 fails silently otherwise)."),
    "kestra/datasource-mismatch": ("Datasources disagree", "The three datasource sections must have the same URL, username and password reference."),
    "kestra/jdbc-url": ("Malformed JDBC URL", "The datasource URL must be jdbc:postgresql://HOST[:PORT]/DATABASE."),
    "kestra/jdbc-driver": ("Unexpected JDBC driver", "The PostgreSQL datasource uses org.postgresql.Driver."),
    "kestra/datasource-name": ("Datasource name", "Flyway migrations run only on the datasource named 'postgres'; queue and repository must be of type postgres."),
    "kestra/basic-auth-missing": ("Basic auth not configured", "Basic authentication is mandatory since Kestra 0.24: set kestra.server.basic-auth."),
    "kestra/basic-auth-username": ("Basic-auth username not an email", "Kestra requires the basic-auth username to be an email address (at most 256 characters)."),
    "kestra/basic-auth-password": ("Weak basic-auth password", "Kestra requires 8+ characters with an upper-case letter, a lower-case letter and a digit."),
    "kestra/plugin-blacklist-missing": ("Plugin blacklist missing", "kestra.plugins.blacklist must be set."),
    "kestra/plugin-blacklist-glob": ("Invalid blacklist glob", "Each blacklist entry is a glob on a plugin type such as io.kestra.plugin.docker.*"),
    "kestra/plugin-blacklist-typo": ("Blacklist entry matches nothing", "The entry looks like a misspelt plugin package, so it blocks nothing."),
    "kestra/plugin-blacklist-docker": ("Docker plugins not blacklisted", "io.kestra.plugin.docker.* must be blacklisted in staging and production."),
    "kestra/minio-endpoint": ("MinIO endpoint not cluster-internal", "Internal storage is the shared cluster MinIO, reached by cluster-internal DNS (SERVICE.NAMESPACE.svc.cluster.local)."),
    "kestra/s3-storage": ("S3 storage without its bucket", "kestra.storage.type: s3 reads kestra.storage.s3, whose bucket Kestra's S3 storage plugin requires."),
    "kestra/s3-unknown-key": ("Unknown S3 storage key", "A key of kestra.storage.s3 that Kestra's S3 storage plugin does not read (it is ignored): a misspelling, in camelCase or kebab-case."),
    "kestra/s3-endpoint": ("S3 endpoint not a usable URL", "kestra.storage.s3.endpoint is an http(s)://HOST[:PORT] URL; plain http only inside the cluster."),
    "kestra/s3-path-style": ("S3 store addressed by virtual host", "Outside AWS, kestra.storage.s3.forcePathStyle: true: otherwise Kestra asks for BUCKET.HOST, which a store reached by its Service name does not answer."),
    "kestra/bucket-name": ("Invalid bucket name", "S3 bucket names are 3-63 characters of lower-case letters, digits, dots and hyphens."),
    "kestra/bucket-env": ("Bucket not kestra-<env>", "Each environment stores into its own bucket named kestra-<env>."),
    "kestra/worker-threads": ("Worker threads out of range", "Worker threads should be between 4 and 256 for one standalone pod."),
    "kestra/worker-autoscaling": ("Worker autoscaling that cannot work", "distributed.worker.autoscaling needs a CPU request on the workers and minReplicas <= maxReplicas."),
    "kestra/distributed-replicas": ("Executor or scheduler count", "In distributed mode 0 executors or schedulers stop executions or triggers (an error outside dev); more than 1 is warned about: Kestra documents the JDBC backend as the deployment where high availability is not required."),
    "kestra/db-connection-budget": ("Database connections over budget", "The Kestra pods' connection pools (pods x datasources x maximum-pool-size, HikariCP default 10) must fit the bundled PostgreSQL's max_connections (100) less the superuser-reserved and kestra-ops' own connections."),
    "kestra/distributed-webserver-replicas": ("One webserver in distributed mode", "Outside dev, mode: distributed runs at least 2 webserver pods: Service kestra has no other backend."),
    "kestra/database-url": ("Datasource URL not of the database mode", "With database.mode external or cloudnativepg, every datasource URL names that mode's host, port, database and sslmode (and the mounted CA as sslrootcert), and every username its user."),
    "kestra/duration": ("Unreadable duration", "Durations need a unit: 30s, 5m, 1h or ISO-8601 (PT5M)."),
    "kestra/grace-period": ("Grace period too short", "The pod's terminationGracePeriodSeconds must exceed kestra.server.termination-grace-period, or Kubernetes kills Kestra mid-shutdown."),
    "kestra/plaintext-secret": ("Plaintext secret", "Secrets come from Kubernetes Secrets as ${ENV_VAR} placeholders, never plain text in values."),
    "kestra/legacy-key": ("Legacy 0.x chart key", "A key of the 0.x Kestra chart layout, ignored by this chart."),
    "kestra/removed-key": ("Key removed in this Kestra version", "The Kestra version of image.tag no longer reads this configuration key (kestra_ops/upgrades/catalogue.yaml, `config`)."),
    "kestra/renamed-key": ("Key renamed in this Kestra version", "The Kestra version of image.tag reads this configuration key under a new name (kestra_ops/upgrades/catalogue.yaml, `config`)."),
    "kestra/unknown-version": ("Kestra version not catalogued", "image.tag names a Kestra version the version catalogue does not know: chart and values support unverified."),
    "kestra/unpinned-image": ("Image tag is not a version", "image.tag is not a Kestra version (e.g. latest): the version rules cannot check the values and the chart configures itself for its appVersion."),
    # chart lint
    "helm/lint": ("helm lint", "helm lint --strict reported a problem with the chart and these values."),
    "helm/template": ("helm template failed", "The chart does not render with these values."),
    "k8s/schema": ("Invalid Kubernetes object", "A rendered object does not match the Kubernetes API schema."),
    "k8s/unknown-kind": ("Unknown kind", "No Kubernetes schema is known for this apiVersion/kind."),
    "manifest/configmap": ("ConfigMap incomplete", "ConfigMap kestra-config must carry application.yml with the three datasource sections."),
    "manifest/probes": ("Probes not on 8081", "Liveness and readiness probes of kestra-standalone (or of each distributed component) use the management port 8081."),
    "manifest/image-latest": ("Unpinned image", "Outside dev every image has an explicit tag other than latest."),
}


def title(rule: str) -> str:
    return RULES.get(rule, (rule, ""))[0]


def help_text(rule: str) -> str:
    return RULES.get(rule, ("", ""))[1]
