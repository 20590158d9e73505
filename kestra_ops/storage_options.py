"""How kestra-ops reaches an S3 store besides its endpoint: region, addressing, TLS.

Each of kestra-ops.yaml's storage sections (``minio:`` for Kestra's bucket, ``backup:`` for the
backup destination) may set, for any S3 server (MinIO, SeaweedFS, Ceph RGW, AWS S3...):

* ``region`` - the region requests are signed for (unset: the SDK asks the server with
  GetBucketLocation, or uses us-east-1);
* ``path_style`` - ``true``: the bucket in the path (``https://host/bucket/key``), what most
  stores besides AWS need; ``false``: in the host name (``https://bucket.host/key``, virtual
  host); unset: the minio SDK decides (virtual host for AWS and Aliyun hosts only);
* ``ca_file`` - a PEM bundle of the CAs that sign the store's certificate, used instead of the
  system's (a relative path is from kestra-ops.yaml's folder). Certificates are always verified;
  only a command's explicit ``--insecure`` skips that, with :data:`INSECURE_WARNING`.

KESTRA_OPS_MINIO_REGION / _PATH_STYLE / _CA_FILE (and KESTRA_OPS_BACKUP_...) set them too. An
unset backup option is minio's when the backups live on minio's endpoint, never guessed for
another server. Pure: no I/O (the CA file is read by the storage adapter).
"""

from __future__ import annotations

INSECURE_WARNING = ("TLS certificate verification of object storage is disabled (--insecure): "
                    "the storage keys and every object could go to an impostor")


def minio_options(env) -> dict:
    """Keyword arguments of :class:`kestra_ops.adapters.storage.Storage` for Kestra's bucket."""
    return {"region": env.minio_region, "path_style": env.minio_path_style,
            "ca_file": env.minio_ca_file, "ca_setting": "minio.ca_file",
            "cert_check": not env.storage_insecure}


def backup_options(env) -> dict:
    """The same for the backup destination (backup.*; unset ones: see the module doc)."""
    same = not env.backup_endpoint or env.backup_endpoint == env.minio_endpoint

    def pick(own, main):
        return main if own is None and same else own

    ca = pick(env.backup_ca_file, env.minio_ca_file)
    return {"region": pick(env.backup_region, env.minio_region),
            "path_style": pick(env.backup_path_style, env.minio_path_style),
            "ca_file": ca,
            "ca_setting": "backup.ca_file" if env.backup_ca_file else "minio.ca_file",
            "cert_check": not env.storage_insecure}
