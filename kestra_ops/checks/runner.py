"""Run independent checks concurrently, each with its own timeout; with ``wait``, run the failing
ones again until all pass or the deadline passes.

A check is a :class:`Spec`: an id and a function ``run(timeout, cancel) -> Item``. The
function gets its time budget (to bound its own network calls) and a ``cancel`` event, set on
Ctrl-C, which long waits poll so their ``finally`` cleanups run promptly. A check still running
when its budget is spent is reported as failed; its thread is left to finish on its own. On
Ctrl-C the runner sets ``cancel``, gives running checks ``interrupt_grace`` seconds to clean up,
then lets the KeyboardInterrupt through.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

from kestra_ops.results import FAIL, Item

Runner = Callable[[float, threading.Event], Item]


@dataclass(frozen=True)
class Spec:
    id: str
    run: Runner


def run_one(spec: Spec, timeout: float, cancel: threading.Event) -> Item:
    """One check, timed; a typed error becomes a failed result with its one line, any other
    exception a failed result naming it (one broken check never hides the others)."""
    from kestra_ops.errors import KestraOpsError

    started = time.perf_counter()
    try:
        result = spec.run(timeout, cancel)
    except KestraOpsError as err:
        result = Item(spec.id, FAIL, str(err))
    except Exception as err:  # noqa: BLE001 - reported as this check's failure
        result = Item(spec.id, FAIL, f"internal error: {type(err).__name__}: {err}")
    result.id = spec.id
    result.seconds = time.perf_counter() - started
    return result


def run_checks(specs: list[Spec], *, timeout: float, wait_for: float | None = None,
               poll: float = 0.5, max_poll: float = 5.0,
               on_progress: Callable[[str], None] | None = None,
               interrupt_grace: float = 15.0) -> list[Item]:
    """Results in the order of ``specs`` (see the module doc)."""
    note = on_progress or (lambda message: None)
    cancel = threading.Event()
    deadline = time.monotonic() + wait_for if wait_for else None
    results: dict[str, Item] = {}
    attempts: dict[str, int] = {}
    pool = ThreadPoolExecutor(max_workers=max(len(specs), 1), thread_name_prefix="check")
    running: list[Future] = []
    try:
        todo = list(specs)
        while todo:
            running = [pool.submit(run_one, spec, timeout, cancel) for spec in todo]
            for spec, result in zip(todo, _collect(todo, running, timeout, note)):
                attempts[spec.id] = attempts.get(spec.id, 0) + 1
                result.attempts = attempts[spec.id]
                results[spec.id] = result
            todo = [s for s in specs if results[s.id].status == FAIL]
            left = deadline - time.monotonic() if deadline is not None else 0.0
            if not todo or left <= 0:
                break
            note(f"waiting for {', '.join(s.id for s in todo)} ({len(todo)} failing, "
                 f"{left:.0f}s left): " + "; ".join(f"{s.id}: {results[s.id].reason}"
                                                      for s in todo))
            # a plain sleep: a Ctrl-C inside Event.wait can leave the event's lock held, and the
            # cancel.set() below then blocks for ever (only this thread sets it anyway)
            time.sleep(min(poll, left))
            poll = min(poll * 1.5, max_poll)
    except KeyboardInterrupt:
        cancel.set()
        busy = [f for f in running if not f.done()]
        if busy:
            note("interrupted: letting running checks clean up")
            wait(busy, timeout=interrupt_grace)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [results[s.id] for s in specs]


def _collect(specs: list[Spec], futures: list[Future], timeout: float,
             note: Callable[[str], None]) -> list[Item]:
    """Wait for one round; a check past its budget is a failure (its thread runs on)."""
    end = time.monotonic() + timeout
    pending = set(futures)
    while pending:
        left = end - time.monotonic()
        if left <= 0:
            break
        done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
        if pending:
            names = [s.id for s, f in zip(specs, futures) if f in pending]
            note(f"checking {', '.join(names)} ({len(futures) - len(pending)} of "
                 f"{len(futures)} done)")
    out = []
    for spec, future in zip(specs, futures):
        if future.done():
            out.append(future.result())
        else:
            out.append(Item(spec.id, FAIL, f"did not finish within {timeout:g}s "
                            "(--timeout-per-check)", seconds=timeout))
    return out
