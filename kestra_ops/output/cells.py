"""Text for table cells and report lines: one line each, whatever the text carries.

Helm's descriptions (``helm history``) and the errors they quote hold newlines and runs of
spaces (a failed upgrade lists every resource not ready, one per line); printed as they are,
they break a table's rows. Tables show :func:`one_line` of a cell, truncated to a width that
keeps the row readable; ``--output json`` keeps the full text.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")
MORE = "..."


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` with every run of whitespace (newlines, tabs) as one space, stripped; longer than
    ``limit`` characters, cut at a word boundary where one is near and ended with ``...``."""
    flat = _SPACE.sub(" ", "" if text is None else str(text)).strip()
    if limit is None or len(flat) <= limit:
        return flat
    keep = max(limit - len(MORE), 1)
    cut = flat[:keep]
    space = cut.rfind(" ")
    if space >= keep * 3 // 4:  # a word boundary in the last quarter: end there
        cut = cut[:space]
    return cut.rstrip(" ,;:") + MORE
