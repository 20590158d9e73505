#!/usr/bin/env python3
"""A backup set's storage copy of many small objects against a sequential get+put loop.

    .venv/bin/python bench/backup_storage.py [--objects 10000] [--baseline-sample 1000]

Target (issue 14, item 7): the copy of 10,000 small objects (the way `backup run` copies
Kestra's internal storage: kestra_ops.workflows.backup.objects.copy_objects, server-side on one
endpoint, 16 workers) at least 10 x faster than a sequential GET + PUT loop over the same
objects, both measured in the same run on the same SeaweedFS (tests/fakes/seaweed.py).

The baseline loop runs over ``--baseline-sample`` objects (default: all) and is scaled to the
full count (its per-object time is flat: one GET and one PUT each); the figure printed says
which. ``storage_copy_ratio(objects=10000)`` returns the numbers for bench/backup.py.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SRC, DST = "bench-kestra", "bench-backups"
TARGET = 10.0


def _fill(client, n: int) -> None:
    def put(i: int) -> None:
        data = f'"value {i}"'.encode() * (1 + i % 20)  # 10..200 bytes, like KV values
        client.put_object(SRC, f"main/company/team{i % 50}/_kv/key{i:06d}.ion",
                          io.BytesIO(data), len(data))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))


def _sequential(storage, entries) -> float:
    """The naive copy: for each object, GET it whole, PUT it (one request after the other)."""
    start = time.perf_counter()
    for e in entries:
        data = storage.get_bytes(SRC, e.name)
        storage.put_bytes(DST, "seq/" + e.name, data)
    return time.perf_counter() - start


def storage_copy_ratio(objects: int = 10000, baseline_sample: int | None = None,
                       server=None) -> dict:
    """{objects, concurrent_s, sequential_s (for all objects), sequential_measured,
    ratio, target, ok, copy}; starts (and stops) its own SeaweedFS unless ``server`` is
    given."""
    from tests.fakes.seaweed import SeaweedS3

    from kestra_ops.adapters.storage import Storage
    from kestra_ops.workflows.backup.objects import copy_objects

    owned = server is None
    if owned:
        server = SeaweedS3.start(Path(tempfile.mkdtemp(prefix="kestra-ops-bench-sw-")))
    try:
        client = server.client()
        for b in (SRC, DST):
            server.remove_bucket(b)
            client.make_bucket(b)
        _fill(client, objects)
        storage = Storage(server.endpoint, server.root_user, server.root_password,
                          secure=False)
        entries = list(storage.iter_entries(SRC, "main/"))
        assert len(entries) == objects, (len(entries), objects)
        sample = entries[:baseline_sample] if baseline_sample else entries
        seq = _sequential(storage, sample) * (len(entries) / len(sample))
        start = time.perf_counter()
        got = copy_objects(storage, SRC, iter(entries), storage, DST, "set/storage/main/",
                           src_prefix="main/")
        conc = time.perf_counter() - start
        assert len(got.objects) == objects and got.streamed_bytes == 0
        ratio = seq / conc if conc > 0 else float("inf")
        return {"objects": objects, "concurrent_s": round(conc, 3),
                "sequential_s": round(seq, 3), "sequential_measured": len(sample),
                "ratio": round(ratio, 2), "target": TARGET, "ok": ratio >= TARGET,
                "copy": got.mode}
    finally:
        for b in (SRC, DST):
            try:
                server.remove_bucket(b)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
        if owned:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--baseline-sample", type=int, default=None,
                        help="time the sequential loop on this many objects, scaled up")
    args = parser.parse_args()
    r = storage_copy_ratio(args.objects, args.baseline_sample)
    scaled = (f" (measured on {r['sequential_measured']}, scaled)"
              if r["sequential_measured"] != r["objects"] else "")
    print(f"storage copy of {r['objects']} small objects ({r['copy']}):")
    print(f"  sequential get+put loop   {r['sequential_s']:8.2f} s{scaled}")
    print(f"  backup copy (concurrent)  {r['concurrent_s']:8.2f} s")
    print(f"  ratio                     {r['ratio']:8.1f} x   (target >= {TARGET:g} x: "
          f"{'ok' if r['ok'] else 'MISSED'})")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
