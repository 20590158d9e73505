"""fileio.write_atomic: the umask decides the mode of ordinary files; anything that may hold a
secret is 0600 whatever the umask; the write is atomic and leaves no temp file."""

from __future__ import annotations

import os

import pytest

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
    with pytest.raises(OSError):
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
    with pytest.raises(OSError):
        write_private(link, "x")
    assert target.read_text() == "keep"
    path = write_private(tmp_path / "r" / "report.json", "x")
    assert path.read_text() == "x" and path.stat().st_mode & 0o777 == 0o600
