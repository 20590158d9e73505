"""What a terminal may be sent: progress lines, colour, and the escape codes of a live line.

Progress goes to stderr on a terminal only: a CI log gets the result (whose steps carry their
timings), unless ``KESTRA_OPS_PROGRESS=1`` asks for plain progress lines there too. Colour and
escape codes: never without a terminal, nor with ``NO_COLOR`` set to anything but ""
(no-color.org), ``TERM=dumb``, or ``--no-color`` (:func:`disable`): plain text then.
"""

from __future__ import annotations

import os

_disabled = False


def disable() -> None:
    """``--no-color``: plain text for the rest of the process."""
    global _disabled
    _disabled = True


def plain() -> bool:
    """True when escape codes are refused whatever the stream: ``--no-color``, ``NO_COLOR``,
    ``TERM=dumb``."""
    return _disabled or bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def styled(stream) -> bool:
    """True when ``stream`` may get colour and cursor control: a terminal, and not :func:`plain`."""
    return not plain() and is_terminal(stream)


def progress_shown(stream=None) -> bool:
    """Progress lines on ``stream`` (stderr): a terminal, or ``KESTRA_OPS_PROGRESS`` set (not
    "", "0")."""
    if os.environ.get("KESTRA_OPS_PROGRESS", "").strip() not in ("", "0"):
        return True
    if stream is None:
        import sys

        stream = sys.stderr
    return is_terminal(stream)


def is_terminal(stream) -> bool:
    """``stream`` is a terminal (False for a missing, closed or odd stream)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
