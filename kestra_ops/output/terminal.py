"""What a terminal may be sent: colour, and the escape codes of a live progress line.

Neither without a terminal; neither with ``NO_COLOR`` set to anything but "" (no-color.org),
``TERM=dumb``, or ``--no-color`` (:func:`disable`): the output is then plain text, the same
lines a CI log gets.
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
    if plain():
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
