"""configmap: config patch / restore / backups of ConfigMap kestra-config."""
