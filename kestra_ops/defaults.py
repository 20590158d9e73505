"""Built-in defaults (a leaf module: cheap to import, so `--help` stays fast)."""

CONFIG_NAME = "kestra-ops.yaml"
DEFAULT_NAMESPACE = "hyperplane-kestra"
DEFAULT_RELEASE = "kestra"
DEFAULT_CHART = "charts/kestra"
DEFAULT_ENVS = ("dev", "staging", "production")
DEFAULT_KUBE_VERSION = "1.33.0"  # API schemas that chart lint checks rendered manifests against
