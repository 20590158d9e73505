"""helm, pg_dump and pg_restore get only the environment they need (issue 12, item 13).

Each real binary runs behind a recording wrapper (a process that writes its own
``/proc/self/cmdline`` and environment, then ``exec``s the real binary in the same process): no
``KESTRA_OPS_*`` variable and no other credential reaches a child; the database password reaches
pg_dump/pg_restore only through ``PGPASSWORD``, never its command line, whichever way the URL
carries it (``user:pass@`` or ``?password=``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kestra_ops.adapters import postgres as pg
from tests.fakes.postgres_server import PASSWORD, USER, pg_cluster, pg_db  # noqa: F401

SECRETS = {
    "KESTRA_OPS_DB_PASSWORD": "kops-db-Secret-1",
    "KESTRA_OPS_MINIO_SECRET_KEY": "kops-minio-Secret-2",
    "KESTRA_OPS_MINIO_ACCESS_KEY": "kops-minio-Access-3",
    "KESTRA_OPS_BASIC_AUTH_PASSWORD": "kops-basic-Secret-4",
    "KESTRA_OPS_ENCRYPTION_KEY": "kops-encryption-Secret-5",
    "KESTRA_OPS_DATABASE_URL": "postgresql://k:kops-url-Secret-6@db/k",
    "GITHUB_TOKEN": "ghp-Secret-7",
    "VAULT_TOKEN": "vault-Secret-8",
    "MY_SERVICE_PASSWORD": "svc-Secret-9",
}


def recorder(tmp_path: Path, name: str, real: str | None, script: str = "") -> tuple[str, Path]:
    """An executable ``name`` that records argv (from /proc) and environ as JSON lines, then
    ``exec``s ``real`` (or runs ``script``, Python, with ``argv``)."""
    log = tmp_path / f"{name}.calls.jsonl"
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    then = (f"os.execv({real!r}, [{real!r}] + sys.argv[1:])" if real else script)
    path.write_text(f"""#!{sys.executable}
import json, os, sys
cmdline = open("/proc/self/cmdline", "rb").read().split(b"\\0")[:-1]
with open({str(log)!r}, "a") as fh:
    fh.write(json.dumps({{"argv": [a.decode() for a in cmdline], "env": dict(os.environ)}}) + "\\n")
argv = sys.argv[1:]
{then}
""")
    path.chmod(0o755)
    return str(path), log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def assert_clean(call: dict, *, password: str | None = None) -> None:
    blob = " ".join(call["argv"])
    assert not [k for k in call["env"] if k.upper().startswith("KESTRA_OPS_")], call["env"]
    for name, value in SECRETS.items():
        assert name not in call["env"]
        assert value not in blob and value not in json.dumps(call["env"])
    if password is not None:
        assert password not in blob
        assert call["env"].get("PGPASSWORD") == password


@pytest.fixture
def secret_env(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # allowed: a locale is not a secret


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_pg_dump_and_pg_restore_get_the_password_only_in_pgpassword(
        form, tmp_path, secret_env, monkeypatch, pg_cluster, pg_db):
    source, target = pg_db(), pg_db()
    pg_cluster.execute(source, "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)")
    dump_exe, dump_log = recorder(tmp_path, "pg_dump", pg.find_binary("pg_dump"))
    restore_exe, restore_log = recorder(tmp_path, "pg_restore", pg.find_binary("pg_restore"))
    monkeypatch.setattr(pg, "find_binary",
                        lambda name, major=None: {"pg_dump": dump_exe,
                                                  "pg_restore": restore_exe}[name])

    def url(db: str) -> pg.DatabaseURL:
        base = f"{pg_cluster.host}:{pg_cluster.port}/{db}"
        text = (f"postgresql://{USER}:{PASSWORD}@{base}?sslmode=disable" if form == "userinfo"
                else f"postgresql://{USER}@{base}?password={PASSWORD}&sslmode=disable")
        return pg.DatabaseURL.parse(text)

    dumper = pg.dump(url(source))
    data = dumper.proc.stdout.read()
    assert dumper.wait(60) == 0, dumper.stderr()
    assert data.startswith(b"PGDMP")
    restorer = pg.restore(url(target))
    restorer.proc.stdin.write(data)
    restorer.proc.stdin.close()
    assert restorer.wait(60) == 0, restorer.stderr()
    assert pg.row_counts(url(target)) == {"public.t": 2}

    [dump_call], [restore_call] = calls(dump_log), calls(restore_log)
    for call in (dump_call, restore_call):
        assert_clean(call, password=PASSWORD)
        assert "sslmode=disable" in " ".join(call["argv"])
        assert call["env"].get("LC_ALL") == "C.UTF-8"


def test_database_url_never_keeps_a_password_in_what_a_child_sees():
    for text in ("postgresql://u:p%40ss@h:5/db", "postgresql://u@h:5/db?password=p%40ss",
                 "postgresql://u@h:5/db?pass%77ord=p%40ss&application_name=x",
                 "jdbc:postgresql://u@h:5/db?password=p%40ss"):
        url = pg.DatabaseURL.parse(text)
        assert url.password == "p@ss", text
        assert "p@ss" not in url.url and "p%40ss" not in url.url and "password" not in url.url
        assert url.child_env()["PGPASSWORD"] == "p@ss"
    assert pg.DatabaseURL.parse("postgresql://u@h/db?password=a&application_name=x").url == \
        "postgresql://u@h/db?application_name=x"


@pytest.mark.parametrize("text, message", [
    ("postgresql://u:a@h/db?password=b", "two different passwords"),
    ("postgresql://u@h/db?sslpassword=k", "sslpassword"),
    ("postgresql://u@h/db?password", "not key=value"),
])
def test_database_url_ambiguous_or_unpassable_secrets_are_refused(text, message):
    from kestra_ops.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        pg.DatabaseURL.parse(text)


def test_helm_children_get_no_secret(tmp_path, secret_env, monkeypatch):
    """Every way kestra-ops starts helm: the CLI commands (version, lint, template), the
    pyhelm3 reads (history) and the supervised changes (upgrade)."""
    from kestra_ops.adapters import helm_cli
    from kestra_ops.adapters.helm import Helm, UpgradeFailed
    from kestra_ops.errors import NotFound

    script = """
word = next((a for a in argv if not a.startswith("-")), "")
if word == "version":
    print("v3.17.3")
    sys.exit(0)
if word == "history":
    print("Error: release: not found", file=sys.stderr)
    sys.exit(1)
print("Error: UPGRADE FAILED: stand-in", file=sys.stderr)
sys.exit(1)
"""
    exe, log = recorder(tmp_path, "helm", None, script)
    monkeypatch.setenv("KESTRA_OPS_HELM", exe)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    monkeypatch.setenv("AWS_PROFILE", "eks")  # an exec credential plugin's, passed to helm
    helm_cli.helm_version.cache_clear()
    try:
        helm = Helm(context="ctx")
        assert helm.version == (3, 17, 3)
        helm_cli.run_helm(["lint", str(tmp_path)], helm=exe)
        with pytest.raises(NotFound):
            helm.history("kestra", "ns")
        with pytest.raises(UpgradeFailed):
            helm.upgrade_install("kestra", str(tmp_path), "ns", [], timeout="10s")
    finally:
        helm_cli.helm_version.cache_clear()
    seen = calls(log)
    words = [[a for a in c["argv"][2:] if not a.startswith("-")][:1] for c in seen]
    assert words == [["version"], ["lint"], ["history"], ["upgrade"]]
    for call in seen:
        assert_clean(call)
        assert call["env"]["KUBECONFIG"] == "/nonexistent/kubeconfig"
        assert call["env"]["AWS_PROFILE"] == "eks"
        assert "PGPASSWORD" not in call["env"]
    history = next(c for c in seen if "history" in c["argv"])
    assert history["argv"][1:3] == [exe, "history"]  # exec'd directly: no /bin/sh -c


def test_pass_env_adds_names_but_never_ours(monkeypatch):
    from kestra_ops.adapters import childenv

    environ = {"PATH": "/bin", "OIDC_ISSUER": "x", "KESTRA_OPS_DB_PASSWORD": "s",
               "kestra_ops_db_password": "s", "GITHUB_TOKEN": "t",
               "KESTRA_OPS_PASS_ENV": "OIDC_ISSUER, KESTRA_OPS_DB_PASSWORD,kestra_ops_db_password"}
    assert childenv.for_helm(environ) == {"PATH": "/bin", "OIDC_ISSUER": "x"}
    assert childenv.for_postgres("pw", environ=environ) == {"PATH": "/bin", "OIDC_ISSUER": "x",
                                                             "PGPASSWORD": "pw"}
