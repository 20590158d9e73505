"""The login item shows Kestra's username/password rule only when the failure is about the
credentials (a 401/403 from Kestra, validation errors), never for a 5xx or no connection."""

from __future__ import annotations

import pytest

from kestra_ops.checks.kestra import check_login
from kestra_ops.errors import OperationFailed, PermissionDenied, Unreachable

USER = "admin@example.com"


def refused() -> PermissionDenied:
    err = PermissionDenied("GET basicAuthValidationErrors: 401 Unauthorized: Kestra refused "
                           f"the credentials for user {USER}")
    err.credentials = True  # as the Kestra client marks Kestra's own 401/403
    return err


def has_rule(result) -> bool:
    return any(d.startswith("rule: the username is") for d in result.details)


@pytest.mark.parametrize("error", [
    OperationFailed("GET basicAuthValidationErrors: Kestra answered 503 after 2 attempts: "
                    "Service Unavailable"),
    Unreachable("GET configs: cannot reach Kestra at http://kestra:8080: connection refused"),
    PermissionDenied("GET configs: the Kubernetes API server's service proxy answered 403: "
                     "services \"kestra\" is forbidden")])
def test_no_rule_hint_when_the_failure_is_not_about_credentials(error):
    result = check_login(USER, {"isBasicAuthInitialized": True}, None, error)
    assert result.status == "fail" and str(error) in result.reason
    assert result.details == []


def test_rule_hint_for_refused_credentials_validation_errors_and_a_bad_username():
    assert has_rule(check_login(USER, {"isBasicAuthInitialized": True}, None, refused()))
    assert has_rule(check_login(USER, {}, ["Invalid password for Basic Authentication."]))
    assert has_rule(check_login(None, {}, ["x"], None))
    assert has_rule(check_login(USER, {"isBasicAuthInitialized": False}, []))
    bad_user = check_login("admin", None, None, Unreachable("GET configs: timed out"))
    assert bad_user.details[0] == "username 'admin' is not an e-mail address (name@domain)"
    assert has_rule(bad_user)
    assert check_login(USER, {"version": "1.3.2"}, [], None).status == "pass"
