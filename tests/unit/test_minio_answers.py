"""How minio setup reads a server's answers: the admin API "not here" (fall back), "denied" and
"failed" (fail); the health endpoints of MinIO and of other S3 stores; error codes from bodies."""

from __future__ import annotations

import pytest

from kestra_ops.adapters.storage import HttpAnswer, error_code
from kestra_ops.adapters.storage_admin import answer_kind
from kestra_ops.workflows.storage.minio_setup import _not_minio


@pytest.mark.parametrize("status,code,kind", [
    (404, None, "absent"), (404, "NoSuchBucket", "absent"), (405, None, "absent"),
    (501, None, "absent"), (501, "NotImplemented", "absent"),
    (400, "NotImplemented", "absent"), (400, "XMinioNotImplemented", "absent"),
    (400, "MethodNotAllowed", "absent"), (409, "NoSuchBucket", "absent"),
    (401, None, "denied"), (403, "AccessDenied", "denied"), (403, "NotImplemented", "denied"),
    (403, "SignatureDoesNotMatch", "denied"), (403, "InvalidAccessKeyId", "denied"),
    (400, None, "failed"), (400, "XMinioAdminInvalidArgument", "failed"),
    (500, None, "failed"), (500, "NotImplemented", "failed"), (502, None, "failed"),
    (503, "XMinioServerNotInitialized", "failed"), (0, None, "failed"),
])
def test_admin_answer_kinds(status, code, kind):
    assert answer_kind(status, code) == kind


@pytest.mark.parametrize("body,code", [
    (b'<?xml version="1.0"?>\n<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>',
     "NoSuchBucket"),
    ('{"Code":"XMinioAdminNotImplemented","Message":"no"}', "XMinioAdminNotImplemented"),
    (b'{"Code": "bad code with spaces"}', None), (b'{"Code": 5}', None), (b"[1]", None),
    (b"<html>503</html>", None), (b"", None), (None, None),
    (b"<Error><Code>" + b"A" * 65 + b"</Code></Error>", None),
])
def test_error_codes_from_bodies(body, code):
    assert error_code(body) == code


@pytest.mark.parametrize("answer,not_minio", [
    (HttpAnswer(404, "", None), True),
    (HttpAnswer(404, "MinIO", None), True),
    (HttpAnswer(403, "SeaweedFS 8000GB 4.48", "AccessDenied"), True),
    (HttpAnswer(501, "AmazonS3", "NotImplemented"), True),
    (HttpAnswer(403, "MinIO", "AccessDenied"), False),  # MinIO never guards health: a failure
    (HttpAnswer(503, "MinIO", None), False),
    (HttpAnswer(503, "nginx", None), False),
    (HttpAnswer(500, "SeaweedFS", "InternalError"), False),
    (HttpAnswer(200, "MinIO", None), False),
])
def test_health_answers_from_other_stores(answer, not_minio):
    assert _not_minio(answer) is not_minio
