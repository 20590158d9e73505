"""Kestra's credentials over plain http:// leaving the machine are said, once, as a client
warning (issue 12, item 14); https, loopback and no credentials say nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestra_ops.settings import Environment
from kestra_ops.wiring import client_for_env

CREDS = {"KESTRA_OPS_BASIC_AUTH_USERNAME": "ops@example.com",
         "KESTRA_OPS_BASIC_AUTH_PASSWORD": "Passw0rd-Zq9"}


def client(url: str, environ: dict | None = None):
    env = Environment(name="production", root=Path("."), kestra_url=url)
    return client_for_env(env, environ=CREDS if environ is None else environ, values={})


@pytest.mark.parametrize("url", ["http://kestra.example.com/", "http://10.0.0.7:8080",
                                 "HTTP://Kestra.Example.com"])
def test_basic_auth_over_plain_http_is_a_warning(url):
    warnings = client(url).warnings
    assert len(warnings) == 1 and "plain http://" in warnings[0]
    assert "Passw0rd-Zq9" not in warnings[0]


@pytest.mark.parametrize("url", ["https://kestra.example.com/", "http://127.0.0.1:8080",
                                 "http://localhost:8080", "http://[::1]:8080"])
def test_no_warning_over_https_or_loopback(url):
    assert client(url).warnings == []


def test_no_warning_without_credentials():
    assert client("http://kestra.example.com/", environ={}).warnings == []
