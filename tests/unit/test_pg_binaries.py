"""Which pg_dump / pg_restore is used: the versions under /usr/lib/postgresql/*/bin and on PATH,
Debian's pg_wrapper left out (it only dispatches to those), unreadable versions ignored."""

from __future__ import annotations

import os

import pytest

from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import ToolMissing


def fake_binary(path, version: str | None):
    path.parent.mkdir(parents=True, exist_ok=True)
    out = f"echo 'pg_dump (PostgreSQL) {version}'" if version else "echo 'usage: whatever'"
    path.write_text(f"#!/bin/sh\n{out}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """/usr/lib/postgresql/{13,16}/bin/pg_dump and a PATH pg_dump, all under tmp_path."""
    libs = [fake_binary(tmp_path / "lib" / v / "bin" / "pg_dump", f"{v}.2") for v in ("13", "16")]
    wrapper = fake_binary(tmp_path / "share" / "pg_wrapper", None)
    on_path = tmp_path / "bin" / "pg_dump"
    on_path.parent.mkdir()
    os.symlink(wrapper, on_path)
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: libs)
    monkeypatch.setattr(pg.shutil, "which", lambda name: str(on_path))
    pg.binary_version.cache_clear()
    yield tmp_path, libs
    pg.binary_version.cache_clear()


def test_pg_wrapper_is_left_out(layout):
    _tmp, libs = layout
    assert pg.installed("pg_dump") == {libs[0]: (13, 2), libs[1]: (16, 2)}


def test_the_lowest_version_not_older_than_the_server(layout):
    _tmp, libs = layout
    assert pg.find_binary("pg_dump", 12) == libs[0]
    assert pg.find_binary("pg_dump", 14) == libs[1]
    assert pg.find_binary("pg_dump") == libs[1]  # no server version: the newest
    with pytest.raises(ToolMissing, match="pg_dump 16 is older than the server"):
        pg.find_binary("pg_dump", 17)


def test_a_plain_binary_on_path_counts(layout, monkeypatch):
    tmp, libs = layout
    plain = fake_binary(tmp / "opt" / "pg_dump", "17.0")
    monkeypatch.setattr(pg.shutil, "which", lambda name: plain)
    assert pg.find_binary("pg_dump", 17) == plain


def test_unreadable_versions_are_ignored_unless_nothing_else(layout, monkeypatch):
    tmp, libs = layout
    odd = fake_binary(tmp / "odd" / "pg_dump", None)
    monkeypatch.setattr(pg.shutil, "which", lambda name: odd)
    assert odd not in pg.installed("pg_dump")
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    assert pg.installed("pg_dump") == {odd: (0, 0)}
