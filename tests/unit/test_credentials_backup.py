"""The backup key (kestra_ops.credentials.backup_key): its own variables or files; Kestra's key
with a warning when neither is set; half a key refused; never a value in a message."""

from __future__ import annotations

from kestra_ops import credentials as creds

KESTRA = {"KESTRA_OPS_MINIO_ACCESS_KEY": "kestra-ak", "KESTRA_OPS_MINIO_SECRET_KEY": "kestra-sk"}


def key(environ):
    return creds.backup_key(creds.Resolver(environ=environ))


def test_its_own_variables_win_without_a_warning():
    assert key({**KESTRA, "KESTRA_OPS_BACKUP_ACCESS_KEY": "b-ak",
                "KESTRA_OPS_BACKUP_SECRET_KEY": "b-sk"}) == ("b-ak", "b-sk", "", "")


def test_files_are_read_like_every_credential(tmp_path):
    (tmp_path / "ak").write_text("file-ak\n")
    (tmp_path / "sk").write_text("file-sk\n")
    got = key({"KESTRA_OPS_BACKUP_ACCESS_KEY_FILE": str(tmp_path / "ak"),
               "KESTRA_OPS_BACKUP_SECRET_KEY_FILE": str(tmp_path / "sk")})
    assert got == ("file-ak", "file-sk", "", "")


def test_kestras_key_stands_in_with_a_warning():
    access, secret, warning, why = key(KESTRA)
    assert (access, secret, why) == ("kestra-ak", "kestra-sk", "")
    assert "Kestra's own MinIO key" in warning and "delete" in warning
    assert "kestra-ak" not in warning and "kestra-sk" not in warning


def test_half_a_key_is_an_error_not_a_fallback():
    access, secret, warning, why = key({**KESTRA, "KESTRA_OPS_BACKUP_ACCESS_KEY": "b-ak"})
    assert (access, secret, warning) == (None, None, "")
    assert why == ("KESTRA_OPS_BACKUP_SECRET_KEY is not set (KESTRA_OPS_BACKUP_ACCESS_KEY is): "
                   "the backup key needs both")
    assert "b-ak" not in why


def test_no_key_at_all_says_which_variables():
    _a, _s, _w, why = key({})
    assert why.startswith("no backup key (KESTRA_OPS_BACKUP_ACCESS_KEY / "
                          "KESTRA_OPS_BACKUP_SECRET_KEY not set) and no MinIO credentials")
