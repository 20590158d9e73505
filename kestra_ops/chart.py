"""The names of what our chart (charts/kestra) creates, and of kestra-ops' own objects, defined
once: every workflow, check and rule reads them from here."""

from __future__ import annotations

CONFIGMAP = "kestra-config"  # ConfigMap with the server's application.yml
CONFIG_KEY = "application.yml"
DEPLOYMENT = "kestra-standalone"  # the Kestra server
# mode: distributed (charts/kestra/templates/distributed.yaml): one Deployment per component,
# and no kestra-standalone
DISTRIBUTED_DEPLOYMENTS = ("kestra-webserver", "kestra-executor", "kestra-scheduler",
                           "kestra-worker")
CONTAINER = "kestra"
SERVICE = "kestra"  # ports: http (service.port), management (service.managementPort)
POSTGRES = "kestra-postgres"  # StatefulSet and Service of the bundled PostgreSQL
POSTGRES_POD = "kestra-postgres-0"
POST_INSTALL_JOB = "kestra-post-install"
BACKUP_CRONJOB = "kestra-backup"
SIDECAR = "istio-proxy"  # the Istio sidecar's container name
# API versions the chart's templates test with .Capabilities.APIVersions.Has (servicemonitor.yaml,
# the worker autoscaler's metrics in _helpers.tpl): helm install/upgrade read them from the
# cluster, an offline `helm template` must be told them (--api-versions)
CAPABILITY_APIS = ("monitoring.coreos.com/v1/ServiceMonitor", "custom.metrics.k8s.io/v1beta1",
                   "external.metrics.k8s.io/v1beta1")

LEASE = "kestra-ops-deploy"  # the deploy lock
FIELD_MANAGER = "kestra-ops"  # the field manager of every write of ours
