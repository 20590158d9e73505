"""Helpers for work run in threads."""

from __future__ import annotations

import importlib


def preload(*modules: str) -> None:
    """Import ``modules`` in the calling thread before worker threads start.

    Our heavy libraries are imported lazily, inside the functions that use them. When two
    threads import the same package graph at once, one can see a module half-initialised (an
    ImportError "partially initialized module 'requests.utils'" was seen with the checks): a
    module shared by the workers is imported once, here, first."""
    for name in modules:
        importlib.import_module(name)
