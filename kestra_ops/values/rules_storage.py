"""Kestra rules for its internal storage on any S3 store (``kestra.storage.type: s3``), and the
bucket-name rules every storage type shares.

Kestra's S3 storage plugin (kestra-io/storage-s3, ``@Plugin.Id("s3")``) reads
``kestra.storage.s3``; its settings are the fields of
src/main/java/io/kestra/storage/s3/S3Storage.java (v1.4.0): bucket (``@NotEmpty``), region,
endpoint, path, accessKey, secretKey, stsRoleArn, stsRoleExternalId, stsRoleSessionName,
stsEndpointOverride, forcePathStyle, s3FilesCompatible, stsRoleSessionDuration. Micronaut binds
each in camelCase or kebab-case (https://kestra.io/docs/configuration, "Camel Case and
Hyphenated Keys"); any other key is silently ignored by Kestra, so a misspelt one
(``forcePathstyle``) is reported here. ``endpoint`` goes to the AWS SDK as
``endpointOverride(URI.create(endpoint))`` (src/main/java/io/kestra/storage/s3/
S3ClientFactory.java): a URL with its scheme. ``forcePathStyle`` is a primitive boolean, false
unless set: the SDK then addresses the bucket as a host name (``BUCKET.host``), which a store
reached by a Service name (SeaweedFS, Ceph RGW, MinIO) does not answer. Literal accessKey /
secretKey values are reported by kestra/plaintext-secret (rules_platform.plaintext_secrets).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Iterator

from kestra_ops.redact import mask_embedded
from kestra_ops.values.rules import BUCKET_RE, CLUSTER_DNS_RE, MISSING, Context, Hit

S3_KEYS = ("bucket", "region", "endpoint", "path", "accessKey", "secretKey", "stsRoleArn",
           "stsRoleExternalId", "stsRoleSessionName", "stsEndpointOverride", "forcePathStyle",
           "s3FilesCompatible", "stsRoleSessionDuration")
BASE = ("kestra", "storage", "s3")


def kebab(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), name)


KNOWN = {spelling: key for key in S3_KEYS for spelling in (key, kebab(key))}


def s3_storage(ctx: Context) -> Iterator[Hit]:
    """type: s3: its section exists with a bucket, every key is one the plugin reads, the
    endpoint is a URL, path-style addressing for a store that is not AWS, the bucket's name."""
    if ctx.get(("kestra", "storage", "type")) != "s3":
        return
    section = ctx.get(BASE)
    if not isinstance(section, dict):
        yield Hit("kestra/s3-storage", "error", "kestra.storage.type is s3 but "
                  "kestra.storage.s3 is not set", BASE[:2],
                  "set kestra.storage.s3.bucket (and endpoint, region, forcePathStyle for a "
                  "store that is not AWS)")
        return
    yield from _keys(section)
    bucket = _one(section, "bucket")
    if not isinstance(bucket, str) or not bucket.strip():
        yield Hit("kestra/s3-storage", "error", "kestra.storage.s3.bucket is not set", BASE,
                  "Kestra's S3 storage needs its bucket (e.g. kestra-production)")
    else:
        yield from bucket_name(ctx, BASE + (_spelt(section, "bucket"),), bucket)
    yield from _endpoint(ctx, section)


def _keys(section: dict) -> Iterator[Hit]:
    import difflib  # only for a misspelt key (~0.6 ms to import)

    for key in section:
        if str(key) in KNOWN:
            continue
        # a case or separator slip (forcepathstyle, force_path_style) first, then the closest
        folded = str(key).lower().replace("_", "").replace("-", "")
        close = [k for k in S3_KEYS if k.lower() == folded] or \
            difflib.get_close_matches(str(key), list(KNOWN), n=1, cutoff=0.6)
        yield Hit("kestra/s3-unknown-key", "error", f"kestra.storage.s3.{key} is not a "
                  "setting of Kestra's S3 storage (Kestra ignores it)", BASE + (key,),
                  f"did you mean {close[0]!r}?" if close else
                  "known: " + ", ".join(S3_KEYS))


def _spelt(section: dict, key: str) -> str:
    return key if key in section else kebab(key)


def _one(section: dict, key: str):
    return section.get(key, section.get(kebab(key), MISSING))


def _endpoint(ctx: Context, section: dict) -> Iterator[Hit]:
    endpoint = _one(section, "endpoint")
    if endpoint is MISSING or endpoint is None:
        return  # AWS S3 itself: the SDK builds the regional endpoint
    path = BASE + (_spelt(section, "endpoint"),)
    if not isinstance(endpoint, str):
        return  # the schema reports the type
    try:
        url = urlsplit(endpoint.strip())
        host = url.hostname or ""
        url.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        url, host = None, ""
    shown = repr(mask_embedded(endpoint))  # a password in it is never shown
    if url is None or url.scheme not in ("http", "https") or not host or \
            url.path.strip("/") or url.query or "@" in url.netloc:
        yield Hit("kestra/s3-endpoint", "error", f"kestra.storage.s3.endpoint {shown} "
                  "is not an http(s)://HOST[:PORT] URL", path,
                  "Kestra's S3 client takes a URL with its scheme, e.g. "
                  "http://seaweedfs-s3.storage.svc.cluster.local:8333 (no path, no "
                  "credentials)")
        return
    internal = bool(CLUSTER_DNS_RE.match(host))
    if url.scheme == "http" and not internal and ctx.strict:
        yield Hit("kestra/s3-endpoint", "warning", f"kestra.storage.s3.endpoint {shown} "
                  "is plain http to a host outside the cluster: the S3 keys' signatures and "
                  "every object travel unencrypted", path, "use https://")
    force = _one(section, "forcePathStyle")
    aws = host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
    if not aws and force not in (True, "true"):
        yield Hit("kestra/s3-path-style", "warning" if force is MISSING else "error",
                  f"kestra.storage.s3.endpoint is {host}, not AWS, and forcePathStyle is "
                  f"{'not set' if force is MISSING else repr(force)}: Kestra would address "
                  f"the bucket as the host name BUCKET.{host}", BASE + (
                      _spelt(section, "forcePathStyle"),) if force is not MISSING else path,
                  "set kestra.storage.s3.forcePathStyle: true (path-style, what SeaweedFS, "
                  "Ceph RGW and MinIO answer by a Service name)")


def bucket_name(ctx: Context, path: tuple, bucket: str) -> Iterator[Hit]:
    """S3's bucket naming rules, then one bucket per environment (kestra-<env>)."""
    problems = []
    if not BUCKET_RE.match(bucket):
        problems.append("must be 3-63 lower-case letters, digits, dots or hyphens, starting and "
                        "ending with a letter or digit")
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        problems.append("must not contain '..', '.-' or '-.'")
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        problems.append("must not look like an IP address")
    if bucket.startswith("xn--") or bucket.endswith(("-s3alias", "--ol-s3")):
        problems.append("uses a prefix or suffix S3 reserves")
    if problems:
        yield Hit("kestra/bucket-name", "error", f"bucket {bucket!r} " + "; ".join(problems),
                  path, "e.g. kestra-production")
        return
    expected = f"kestra-{ctx.env}" if ctx.env else None
    if (expected and bucket != expected) or (not expected and not bucket.startswith("kestra-")):
        yield Hit("kestra/bucket-env", "error",
                  f"bucket {bucket!r} is not {expected or 'kestra-<env>'}", path,
                  f"each environment has its own bucket: {expected or 'kestra-<env>'}")
