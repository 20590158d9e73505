#!/usr/bin/env python3
"""`backup run --what db` and `backup restore` against pg_dump / pg_restore, in the same run.

    .venv/bin/python bench/backup.py [--size-mb 200] [--small-mb 50] [--repeat 3] [--warmup 1]
                                                        # --size-mb 1000: ~1 GB

A throwaway PostgreSQL cluster (tests/fakes/postgres_server.py) gets a generated database of
about --size-mb (INSERT ... SELECT generate_series: jsonb and md5 text, like Kestra's tables);
an S3 server (moto_server) runs as its own process. Measured:

- backup wall: `kestra-ops backup run --what db --quiet` vs `pg_dump -Fc > /dev/null`
  (target ratio <= 0.5) and the compressed sizes of both (zstd object vs pg_dump's gzip file);
- peak RSS of the kestra-ops process itself (RUSAGE_SELF at its exit; pg_dump/pg_restore are
  separate processes) at --small-mb and --size-mb (target <= 150 MB at both);
- restore wall: `kestra-ops backup restore latest --to-database NEW --yes` vs
  `pg_restore -d NEW2 FILE` of the local -Fc file (target ratio <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ROW_BYTES = 174  # on-disk bytes per generated row (measured: 230 gave 755 MB for 1000)


def generate(cluster, name: str, size_mb: int) -> float:
    cluster.create_db(name)
    rows = int(size_mb * 1e6 / ROW_BYTES)
    t0 = time.monotonic()
    cluster.execute(name, f"""
        CREATE TABLE executions (id bigint PRIMARY KEY, namespace text, flow_id text,
                                 state text, value jsonb, created timestamptz);
        CREATE TABLE logs (id bigint, execution_id bigint, message text);
        INSERT INTO executions SELECT g, 'company.team' || (g % 50), 'flow-' || (g % 1000),
            (ARRAY['SUCCESS','FAILED','RUNNING'])[1 + g % 3],
            jsonb_build_object('id', md5(g::text), 'inputs', jsonb_build_object('n', g,
                               'label', 'run ' || g), 'labels', jsonb_build_array('a', 'b')),
            now() - g * interval '1 second'
            FROM generate_series(1, {rows // 2}) g;
        INSERT INTO logs SELECT g, g / 4, 'task ' || (g % 97) || ' done: ' || md5(g::text)
            FROM generate_series(1, {rows - rows // 2}) g;
    """)
    # hint bits, visibility map and statistics now, and the pages that writes flushed: otherwise
    # the first dump pays for them, and autovacuum and the checkpointer compete with the pairs
    cluster.execute(name, "VACUUM (FREEZE, ANALYZE)")
    cluster.execute(name, "CHECKPOINT")
    return time.monotonic() - t0


def db_size(cluster, name: str) -> int:
    import psycopg

    with psycopg.connect(cluster.url(name)) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


# kestra-ops run so that it reports its OWN peak RSS (VmHWM at exit): os.wait4's figure would
# include pg_dump / pg_restore (its waited-for children), and ru_maxrss survives exec(), so it
# would start from the bench process's own peak.
LAUNCH = ("import atexit, os, sys\n"
          "def report():\n"
          "    hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0]\n"
          "    with open(os.environ['BENCH_RSS_FILE'], 'w') as fh:\n"
          "        fh.write(str(int(hwm.split()[1]) * 1024))\n"
          "atexit.register(report)\n"
          "sys.argv = ['kestra-ops', *sys.argv[1:]]\n"
          "from kestra_ops.cli import main\n"
          "main()\n")


def kestra_ops(args, env) -> tuple[float, int]:
    """(wall seconds, kestra-ops' own peak RSS in bytes)."""
    rss_file = Path(tempfile.mkstemp(prefix="bench-rss-")[1])
    try:
        wall, _ = timed([sys.executable, "-c", LAUNCH, *args],
                        env={**env, "BENCH_RSS_FILE": str(rss_file)})
        return wall, int(rss_file.read_text())
    finally:
        rss_file.unlink()


def timed(argv, env=None, stdout=subprocess.DEVNULL) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes of the process and its children) — os.wait4."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv[:4]))}... failed ({proc.returncode}): {err}")
    return wall, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--small-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternated (pg_dump -Fc, backup run) pairs; the median is shown")
    parser.add_argument("--warmup", type=int, default=1, help="pairs run first, not counted")
    args = parser.parse_args()

    from kestra_ops.adapters.postgres import find_binary
    from tests.fakes.postgres_server import start_cluster

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
    moto = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", host,
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    from minio import Minio

    for _ in range(100):
        try:
            Minio(f"{host}:{port}", "bench", "bench-secret", secure=False).make_bucket(
                "kestra-dev")
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    with start_cluster(shared_buffers="256MB", max_wal_size="4GB") as cluster, \
            tempfile.TemporaryDirectory(prefix="kestra-ops-bench-") as tmp:
        cfg = Path(tmp) / "kestra-ops.yaml"
        cfg.write_text("environments:\n  dev:\n    minio: {endpoint: '%s:%d', bucket: kestra-dev, "
                       "secure: false}\n" % (host, port))
        base_env = {**os.environ, "KESTRA_OPS_CONFIG": str(cfg),
                    "KESTRA_OPS_MINIO_ACCESS_KEY": "bench",
                    "KESTRA_OPS_MINIO_SECRET_KEY": "bench-secret"}
        pg_dump, pg_restore = find_binary("pg_dump"), find_binary("pg_restore")
        pgenv = {**os.environ, "PGPASSWORD": cluster.url().split(":")[2].split("@")[0]}
        results = {}
        for label, size in (("small", args.small_mb), ("large", args.size_mb)):
            name = f"bench_{label}"
            gen = generate(cluster, name, size)
            actual = db_size(cluster, name)
            print(f"[{label}] generated {name}: {actual / 1e6:.0f} MB on disk in {gen:.1f}s",
                  flush=True)
            env = {**base_env, "KESTRA_OPS_DATABASE_URL": cluster.url(name)}
            url = cluster.url(name, password=None)
            r = {"db_mb": actual / 1e6, "ratios": []}
            local = Path(tmp) / "local.dump"
            if label == "large":
                with open(local, "wb") as fh:
                    timed([pg_dump, "-Fc", "-d", url], env=pgenv, stdout=fh)
                r["pg_dump_size"] = local.stat().st_size
            # alternated pairs, so that a slow moment of the machine hits both sides; the first
            # --warmup pairs are not counted (as hyperfine's --warmup). Measured: after three
            # plain dumps, the first upload of a fresh moto is still ~15% slower than the next
            pairs = args.warmup + args.repeat if label == "large" else 1
            for run in range(pairs):
                if label == "large":
                    r["pg_dump_wall"], _ = timed([pg_dump, "-Fc", "-d", url], env=pgenv)
                r["backup_wall"], r["backup_rss"] = kestra_ops(
                    ["backup", "run", "--env", "dev", "--what", "db", "--quiet"], env=env)
                r["backup_size"], r["backup_db_step"] = newest_set(host, port)
                warmup = label == "large" and run < args.warmup
                if label == "large" and not warmup:
                    r["ratios"].append((r["backup_wall"] / r["pg_dump_wall"],
                                        r["backup_wall"], r["pg_dump_wall"]))
                print(f"[{label}]{' warm-up:' if warmup else ''} backup run "
                      f"{r['backup_wall']:.2f}s (db step {r['backup_db_step']:.2f}s)"
                      + (f", pg_dump -Fc {r['pg_dump_wall']:.2f}s" if label == "large" else ""),
                      flush=True)
                time.sleep(1.1)  # the next set gets its own stamp
            if label == "large":
                cluster.create_db("restore_tool")
                cluster.create_db("restore_plain")
                r["restore_wall"], r["restore_rss"] = kestra_ops(
                    ["backup", "restore", "--env", "dev", "latest", "--yes",
                     "--quiet", "--to-database", cluster.url("restore_tool")], env=env)
                r["pg_restore_wall"], _ = timed(
                    [pg_restore, "--no-owner", "--single-transaction", "-d",
                     cluster.url("restore_plain", password=None), str(local)], env=pgenv)
            results[label] = r
    moto.terminate()
    moto.wait()
    report(results["small"], results["large"], args.warmup)


def newest_set(host: str, port: int) -> tuple[int, float]:
    """(size of the newest db.dump.zst, its manifest's db step seconds)."""
    import json

    from minio import Minio

    mc = Minio(f"{host}:{port}", "bench", "bench-secret", secure=False)
    objs = [o for o in mc.list_objects("kestra-dev", prefix="backups/dev/", recursive=True)
            if o.object_name.endswith(".zst")]
    newest = max(objs, key=lambda o: o.object_name)
    manifest = json.loads(mc.get_object("kestra-dev", newest.object_name.replace(
        "db.dump.zst", "manifest.json")).read())
    return newest.size, manifest["timings"]["db"]


def report(s: dict, big: dict, warmup: int) -> None:
    ratios = sorted(big["ratios"])
    ratio, wall, dump = ratios[len(ratios) // 2]
    print(f"\nbackup run --what db ({big['db_mb']:.0f} MB database, {os.cpu_count()} CPUs, "
          f"{len(ratios)} alternated pairs after {warmup} warm-up, median shown):")
    print(f"  kestra-ops backup run : {wall:6.2f}s  object {big['backup_size'] / 1e6:7.1f} MB "
          "(zstd)")
    print(f"  pg_dump -Fc >/dev/null: {dump:6.2f}s  file   {big['pg_dump_size'] / 1e6:7.1f} MB "
          "(gzip)")
    print(f"  ratio {ratio:.2f} (pairs: {', '.join(f'{r[0]:.2f}' for r in big['ratios'])}; "
          f"target <= 0.5: {'met' if ratio <= 0.5 else 'NOT met'})")
    print("peak RSS of kestra-ops backup run:")
    for r in (s, big):
        print(f"  {r['db_mb']:6.0f} MB database: {r['backup_rss'] / 1e6:6.1f} MB "
              f"({'met' if r['backup_rss'] <= 150e6 else 'NOT met'}: <= 150 MB)")
    rr = big["restore_wall"] / big["pg_restore_wall"]
    print(f"restore: kestra-ops {big['restore_wall']:.2f}s (peak RSS "
          f"{big['restore_rss'] / 1e6:.0f} MB) vs pg_restore of the local file "
          f"{big['pg_restore_wall']:.2f}s: ratio {rr:.2f} (target <= 1.2: "
          f"{'met' if rr <= 1.2 else 'NOT met'})")

if __name__ == "__main__":
    main()
