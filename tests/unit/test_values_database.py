"""Rule kestra/database-url: the datasource URLs name the database of database.mode (the
corpus cases tests/corpus/values/database-*.yaml check the file:line of each finding)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kestra_ops.values.rules_database import DEFAULTS, RULE, database_urls
from kestra_ops.values.rules_platform import ALL_RULES, run_rules

ROOT = Path(__file__).resolve().parents[2]
EXT = "jdbc:postgresql://pg.example.com:5432/kestra?sslmode=verify-full"
CNPG = "jdbc:postgresql://kestra-db-rw:5432/kestra?sslmode=verify-full&sslrootcert=/app/db-ca/ca.crt"


def values(database: dict, url: str, username: str = "kestra") -> dict:
    ds = {"url": url, "username": username, "password": "${KESTRA_DB_PASSWORD}"}
    return {"database": database, "datasources": {"default": dict(ds), "postgres": dict(ds)},
            "kestra": {"datasources": {"postgres": dict(ds)}}}


def hits(data: dict) -> list:
    return [h for h in run_rules(data, "production") if h.rule == RULE]


def test_registered_and_defaults_are_the_charts():
    assert database_urls in ALL_RULES
    chart = yaml.safe_load((ROOT / "charts/kestra/values.yaml").read_text())["database"]
    assert chart["mode"] == DEFAULTS["mode"]
    for section, keys in DEFAULTS.items():
        if isinstance(keys, dict):
            for key, value in keys.items():
                assert chart[section][key] == value, (section, key)


@pytest.mark.parametrize("data", [
    values({"mode": "bundled"}, "jdbc:postgresql://kestra-postgres:5432/kestra"),
    values({}, "jdbc:postgresql://anything:5432/kestra"),  # no mode: bundled, nothing new
    values({"mode": "external", "external": {"host": "pg.example.com"}}, EXT),
    values({"mode": "external", "external": {"host": "PG.example.com", "port": 6432,
                                             "sslmode": "require"}},
           "jdbc:postgresql://pg.example.com:6432/kestra?sslmode=require&ApplicationName=k"),
    values({"mode": "external", "external": {"host": "pg.example.com",
                                             "ca": {"secretName": "ca", "key": "r.pem"}}},
           EXT + "&sslrootcert=/app/db-ca/r.pem"),
    values({"mode": "cloudnativepg"}, CNPG),
    values({"mode": "cloudnativepg"}, CNPG.replace("kestra-db-rw:", "kestra-db-rw.ns.svc:")),
    values({"mode": "cloudnativepg", "cloudnativepg": {"sslmode": "require"}},
           "jdbc:postgresql://kestra-db-rw/kestra?sslmode=require"),
    values({"mode": "external", "external": {"host": "pg.example.com"}}, "${DB_URL}"),
])
def test_urls_of_the_mode_pass(data):
    assert hits(data) == []


@pytest.mark.parametrize("database, url, expect", [
    ({"mode": "external", "external": {"host": "pg.example.com"}},
     "jdbc:postgresql://kestra-postgres:5432/kestra?sslmode=verify-full",
     "host 'kestra-postgres' is not 'pg.example.com'"),
    ({"mode": "external", "external": {"host": "pg.example.com", "port": 6432}}, EXT,
     "port 5432 is not 6432"),
    ({"mode": "external", "external": {"host": "pg.example.com", "database": "k2"}}, EXT,
     "database 'kestra' is not 'k2'"),
    ({"mode": "external", "external": {"host": "pg.example.com"}},
     EXT.replace("verify-full", "require"), "sslmode is 'require', not 'verify-full'"),
    ({"mode": "external", "external": {"host": "pg.example.com", "sslmode": "disable"}},
     "jdbc:postgresql://pg.example.com/kestra", "has no sslmode"),
    ({"mode": "external", "external": {"host": "pg.example.com", "ca": {"configMapName": "c"}}},
     EXT, "has no sslrootcert=/app/db-ca/ca.crt"),
    ({"mode": "external", "external": {"host": "pg.example.com"}},
     EXT + "&sslrootcert=/app/db-ca/ca.crt", "no CA is mounted"),
    ({"mode": "external", "external": {"host": "pg.example.com"}},
     "jdbc:postgresql://pg.example.com,pg2.example.com/kestra?sslmode=verify-full",
     "names 2 hosts"),
    ({"mode": "cloudnativepg", "cloudnativepg": {"clusterName": "pg"}}, CNPG,
     "host 'kestra-db-rw' is not 'pg-rw'"),
    ({"mode": "cloudnativepg"}, CNPG.replace("kestra-db-rw:", "kestra-db-ro:"),
     "host 'kestra-db-ro'"),
    ({"mode": "cloudnativepg"}, CNPG.replace("&sslrootcert=/app/db-ca/ca.crt", ""),
     "has no sslrootcert"),
])
def test_a_url_not_of_the_mode_is_an_error_on_each_datasource(database, url, expect):
    found = hits(values(database, url))
    assert [h.path for h in found] == [("datasources", "default", "url"),
                                       ("datasources", "postgres", "url"),
                                       ("kestra", "datasources", "postgres", "url")]
    assert all(h.severity == "error" and expect in h.message for h in found), found
    assert found[0].hint.startswith("use jdbc:postgresql://")


def test_wrong_username_and_missing_host():
    [hit] = [h for h in hits(values({"mode": "cloudnativepg", "cloudnativepg": {"owner": "app"}},
                                    CNPG, username="kestra"))
             if h.path == ("datasources", "default", "username")]
    assert "'kestra' is not 'app'" in hit.message
    [hit] = hits(values({"mode": "external"}, EXT))
    assert hit.path == ("database", "mode") and "host is not set" in hit.message
    [hit] = hits(values({"mode": "external", "external": {"host": ""}}, EXT))
    assert hit.path == ("database", "external", "host")


def test_a_password_in_the_url_is_never_shown():
    data = values({"mode": "external", "external": {"host": "pg.example.com"}},
                  "jdbc:postgresql://kestra-postgres:5432/kestra?password=s3cr3t-Value")
    found = hits(data)
    assert found and not any("s3cr3t" in h.message + (h.hint or "") for h in found)
