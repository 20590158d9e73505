"""A consistent point of a PostgreSQL database for a backup (the dump and the metadata reads
of :mod:`kestra_ops.workflows.backup.storage_set` see the same data)."""

from __future__ import annotations

from kestra_ops.adapters.postgres import DatabaseURL, connect
from kestra_ops.errors import OperationFailed


class Snapshot:
    """One consistent point of a database: a ``REPEATABLE READ READ ONLY`` transaction that
    exports its snapshot (``pg_export_snapshot()``, :attr:`id`) for ``pg_dump --snapshot``;
    :meth:`rows` reads in that same snapshot. The snapshot can be imported only while this
    transaction is open: keep it until pg_dump has finished, then :meth:`close` (also done
    on exit from a ``with``; never raises)."""

    def __init__(self, url: DatabaseURL):
        import psycopg

        self.url = url
        self.conn = connect(url)
        try:
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self.id: str = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except psycopg.Error as err:
            self.close()
            raise OperationFailed(f"PostgreSQL {url}: cannot export a snapshot: "
                                  f"{url.mask(str(err).strip())}") from None

    def has_table(self, name: str) -> bool:
        """``name`` (schema-qualified or on the search path) exists."""
        return self.rows("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]

    def rows(self, sql, params=()) -> list[tuple]:
        import psycopg

        try:
            return self.conn.execute(sql, params).fetchall()
        except psycopg.Error as err:
            raise OperationFailed(f"PostgreSQL {self.url}: "
                                  f"{self.url.mask(str(err).strip())}") from None

    def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "Snapshot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
