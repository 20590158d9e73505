"""The one duration grammar of kestra-ops' options: Go/Helm style (``90s``, ``10m``, ``1h30m``,
``1.5h``, ``500ms``), ISO-8601 (``PT5M``, ``PT1H30M``, ``P1D``, ``P1DT2H``), or a bare number of
seconds. :func:`parse` gives seconds; :func:`go` gives what helm's ``--timeout`` takes."""

from __future__ import annotations

import re

from kestra_ops.errors import InvalidInput

_GO = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_ISO = re.compile(r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?"
                  r"(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?", re.I)
MAX_SECONDS = 366 * 86400.0  # a year: longer is a typo


def parse(value: str | int | float) -> float:
    """Seconds; :class:`InvalidInput` naming the value when it is not a positive duration."""
    if isinstance(value, bool):
        raise InvalidInput(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        seconds = _text(text)
        if seconds is None:
            raise InvalidInput(f"invalid duration {value!r} (e.g. 90s, 10m, 1h30m or PT5M)")
    if not seconds > 0:
        raise InvalidInput(f"duration {value!r} must be positive")
    if seconds > MAX_SECONDS:
        raise InvalidInput(f"duration {value!r} is longer than a year")
    return seconds


def _text(text: str) -> float | None:
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _GO.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _UNIT[u] for n, u in parts)
    m = _ISO.fullmatch(text)
    if m and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        return (float(m["d"] or 0) * 86400 + float(m["h"] or 0) * 3600
                + float(m["m"] or 0) * 60 + float(m["s"] or 0))
    return None


def go(value: str | int | float) -> str:
    """The duration as helm's ``--timeout`` takes it: whole seconds (``600s``) or ms."""
    seconds = parse(value)
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"
