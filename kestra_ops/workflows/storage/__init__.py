"""storage: the environment's bucket and its scoped key on MinIO / S3."""
