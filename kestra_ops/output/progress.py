"""Progress for commands that wait: a live line on a terminal, one plain line per step otherwise,
nothing with --quiet. Messages go to stderr so stdout stays the result (text or JSON)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import IO, Iterator

from kestra_ops.output import MARKS
from kestra_ops.output.terminal import styled


class StepStatus:
    """What a step ended with, when it did not raise: ``pass`` unless the block says otherwise
    (a step whose work ran but whose verdict is a failure, such as a failing checklist)."""

    def __init__(self) -> None:
        self.status = "pass"

    def fail(self) -> None:
        self.status = "fail"

    def warn(self) -> None:
        if self.status == "pass":
            self.status = "warn"

    def skip(self) -> None:
        self.status = "skip"


class Progress:
    def __init__(self, *, quiet: bool = False, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = styled(self.stream)  # a live line only on a terminal that takes escapes

    def _print(self, *args, **kwargs) -> None:
        """Progress is a courtesy: a stderr nobody reads any more (``2>&1 | head``) ends the
        progress, never the operation (its result and exit code stay)."""
        try:
            print(*args, **kwargs)
        except BrokenPipeError:
            self.quiet = True

    def info(self, message: str) -> None:
        if not self.quiet:
            if self.tty:
                self._print("\r\x1b[2K", end="", file=self.stream)
            self._print(message, file=self.stream, flush=True)

    def clear(self) -> None:
        """Take a transient status line (:meth:`update`) off the terminal, before the result is
        printed on the same screen."""
        if self.tty and not self.quiet:
            self._print("\r\x1b[2K", end="", file=self.stream, flush=True)

    def update(self, message: str) -> None:
        """A transient status (a wait loop's latest state): overwritten on a TTY, else skipped."""
        if self.quiet or not self.tty:
            return
        self._print(f"\r\x1b[2K  … {message}", end="", file=self.stream, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[StepStatus]:
        """``with progress.step("helm upgrade") as status:`` prints the step, then its mark
        (:data:`kestra_ops.output.MARKS`) and time: FAIL when the block raises or calls
        ``status.fail()``, INTERRUPTED on Ctrl-C."""
        start = time.monotonic()
        status = StepStatus()
        if not self.quiet:
            if self.tty:
                self._print(f"  … {name}", end="", file=self.stream, flush=True)
            else:
                self._print(f"- {name}", file=self.stream, flush=True)
        try:
            yield status
        except BaseException as err:
            self._done(name, MARKS["interrupted" if isinstance(err, KeyboardInterrupt)
                                   else "fail"], start)
            raise
        self._done(name, MARKS[status.status], start)

    def _done(self, name: str, status: str, start: float) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - start
        prefix = "\r\x1b[2K" if self.tty else ""
        self._print(f"{prefix}  {status:11} {name} ({elapsed:.1f}s)", file=self.stream, flush=True)
