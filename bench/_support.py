"""Shared by the benches: environment patching for the test-doubles' installers."""

from __future__ import annotations

import os


class EnvPatch(dict):
    """The part of pytest's monkeypatch the stand-in installers use, applied to os.environ."""

    def setenv(self, key, value):
        os.environ[key] = value

    def delenv(self, key, raising=False):
        os.environ.pop(key, None)
