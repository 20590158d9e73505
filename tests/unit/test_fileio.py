"""fileio.write_atomic: the umask decides the mode of ordinary files; anything that may hold a
secret is 0600 whatever the umask; the write is atomic and leaves no temp file."""

from __future__ import annotations

import os

import pytest

from kestra_ops.errors import InvalidInput
from kestra_ops.fileio import write_atomic


@pytest.fixture
def umask():
    def set_(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    os.umask(old)
    yield set_
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640),
                                        (0o002, 0o664)])
def test_ordinary_files_honour_the_umask(mask, mode, umask, tmp_path):
    umask(mask)
    path = write_atomic(tmp_path / "out.yaml", "a: 1\n")
    assert path.stat().st_mode & 0o777 == mode
    assert path.read_text() == "a: 1\n"


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o002])
def test_secret_files_are_0600_whatever_the_umask(mask, umask, tmp_path):
    umask(mask)
    path = write_atomic(tmp_path / "deep" / "out.yaml", "password: x\n", secret=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "deep").stat().st_mode & 0o077 == 0  # a new folder is the user's only


def test_a_replaced_file_takes_the_new_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "out.yaml"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_atomic(path, "new", secret=True)
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]


def test_a_symlink_is_replaced_not_followed(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "out.yaml"
    link.symlink_to(target)
    write_atomic(link, "new", secret=True)
    assert target.read_text() == "keep"
    assert not link.is_symlink() and link.read_text() == "new"


def test_append_private_refuses_a_symlink(tmp_path):
    from kestra_ops.fileio import append_private

    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "backups" / "changes.jsonl"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(InvalidInput, match="symbolic link"):
        append_private(link, "x\n")
    assert target.read_text() == ""
    path = tmp_path / "backups" / "other.jsonl"
    append_private(path, "a\n")
    append_private(path, "b\n")
    assert path.read_text() == "a\nb\n" and path.stat().st_mode & 0o777 == 0o600


def test_write_private_refuses_a_symlink(tmp_path):
    from kestra_ops.fileio import write_private

    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    with pytest.raises(InvalidInput, match="symbolic link"):
        write_private(link, "x")
    assert target.read_text() == "keep"
    path = write_private(tmp_path / "r" / "report.json", "x")
    assert path.read_text() == "x" and path.stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- backups/ and exports

def test_the_change_log_is_never_written_through_a_symlink(tmp_path):
    from kestra_ops.audit import log_change

    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "changes.jsonl").symlink_to(target)
    with pytest.raises(InvalidInput, match="symbolic link"):
        log_change(tmp_path, action="x", env="dev", target="y")
    assert target.read_text() == ""


def test_a_release_backup_is_never_written_through_a_symlink(tmp_path):
    from kestra_ops.workflows.release.report import write_private as release_write

    target = tmp_path / "elsewhere"
    target.write_text("keep")
    folder = tmp_path / "backups" / "releases" / "dev" / "stamp"
    folder.mkdir(parents=True)
    (folder / "configmap.yaml").symlink_to(target)
    with pytest.raises(InvalidInput, match="symbolic link"):
        release_write(folder / "configmap.yaml", "data")
    assert target.read_text() == "keep"


def test_a_symlink_in_the_config_backups_folder_is_neither_listed_nor_restored(tmp_path):
    from kestra_ops.workflows.configmap import backups

    live = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kestra-config", "namespace": "ns"}, "data": {"a": "b"}}
    real = backups.write_backup(tmp_path, live, env="dev")
    assert real.stat().st_mode & 0o777 == 0o600
    planted = tmp_path / "planted.yaml"
    planted.write_text(real.read_text())
    link = backups.folder(tmp_path) / "kestra-config-20990101T000000Z.yaml"
    link.symlink_to(planted)
    assert [b.path for b in backups.list_backups(tmp_path)] == [real]
    with pytest.raises(InvalidInput, match="symbolic link"):
        backups.resolve(tmp_path, link.name)


def test_exported_flows_are_0600_whatever_the_umask(tmp_path, umask):
    import io
    import zipfile

    from kestra_ops.workflows.flows.remote import export

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("company.team.hello.yml", "id: hello\nnamespace: company.team\ntasks: []\n")

    class Client:
        def export_flows(self, namespace=None):
            return buf.getvalue()

    umask(0o022)
    export(Client(), tmp_path / "export.zip")
    assert (tmp_path / "export.zip").stat().st_mode & 0o777 == 0o600
    export(Client(), tmp_path / "flows")
    files = list((tmp_path / "flows").rglob("*.yaml"))
    assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
