"""Kestra versions: ``1.3.2``, ``v1.3.2`` (the image tag) and tag flavours (``v2.0.0-slim``,
``v1.3.2-no-plugins``) parsed into comparable :class:`Version` values.

The image tag scheme ``v<version>`` with an optional ``-<flavour>`` suffix is Kestra's own
(https://kestra.io/docs/migration-guide/v2.0.0/migration-tutorial runs ``kestra/kestra:v2.0.0-slim``;
the catalogue's ``image`` entry cites it). A tag that is not a version (``latest``, ``develop``)
has no version: the caller must then ask Kestra's API.
"""

from __future__ import annotations

import re

from kestra_ops.errors import InvalidInput

VERSION_RE = re.compile(r"^v?(\d{1,4})\.(\d{1,4})\.(\d{1,6})(?:-([A-Za-z0-9][A-Za-z0-9.-]{0,40}))?$")


class Version(tuple):
    """A Kestra release version (major.minor.patch), ordered and hashable as the tuple it is
    (a tuple, not a dataclass: every ``values validate`` reads a version, and the dataclass
    machinery cost ~0.7 ms of each cold run)."""

    __slots__ = ()

    def __new__(cls, major: int, minor: int, patch: int):
        return tuple.__new__(cls, (major, minor, patch))

    def __getnewargs__(self):  # copy and pickle call __new__ with these
        return tuple(self)

    major = property(lambda self: self[0])
    minor = property(lambda self: self[1])
    patch = property(lambda self: self[2])

    def __repr__(self) -> str:
        return f"Version({self[0]}, {self[1]}, {self[2]})"

    @property
    def line(self) -> str:
        """The release line, e.g. ``1.3``."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def tag(self, flavour: str | None = None) -> str:
        """The image tag of this version (``v1.3.2``, ``v2.0.0-slim``)."""
        return f"v{self}" + (f"-{flavour}" if flavour else "")


def parse(text: object, what: str = "version") -> Version:
    """``1.3.2`` / ``v1.3.2`` / ``v1.3.2-slim`` -> Version; anything else is InvalidInput."""
    found = split_tag(text)
    if found is None:
        shown = str(text)[:60] if text is not None else "nothing"
        raise InvalidInput(f"{what} {shown!r} is not a Kestra version (expected e.g. 1.3.2 or "
                           "v1.3.2)")
    return found[0]


def split_tag(text: object) -> tuple[Version, str | None] | None:
    """(version, flavour) of a tag or version string; None when it is not one."""
    if not isinstance(text, str):
        return None
    m = VERSION_RE.match(text.strip())
    if not m:
        return None
    return Version(int(m[1]), int(m[2]), int(m[3])), m[4]


def try_parse(text: object) -> Version | None:
    found = split_tag(text)
    return found[0] if found else None
