"""upgrade: Kestra version upgrades (plan, run), their migrations as Kubernetes Jobs."""
