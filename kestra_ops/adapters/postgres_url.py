"""A PostgreSQL connection URL (a libpq URI) split into the part safe to show or pass on a
command line and the password; its TLS mode.

``sslpassword`` in a URL is refused (libpq has no variable for it, so pg_dump would show it on
its command line). ``sslmode`` follows libpq (https://www.postgresql.org/docs/current/
libpq-connect.html#LIBPQ-CONNECT-SSLMODE): disable < allow < prefer < require < verify-ca <
verify-full; libpq's default when a URL names none is ``prefer`` (PGSSLMODE may change it).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from kestra_ops.errors import InvalidInput

# libpq's sslmode values, weakest first
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class DatabaseURL:
    """A libpq URI split into the part safe to show/pass and the password."""

    url: str                # without the password
    password: str | None

    @classmethod
    def parse(cls, text: str) -> "DatabaseURL":
        text = (text or "").strip()
        if text.startswith("jdbc:"):
            text = text[5:]
        parts = urlsplit(text)
        if parts.scheme not in ("postgresql", "postgres"):
            raise InvalidInput("database URL: expected postgresql://user[:password]@host[:port]/db")
        password = unquote(parts.password) if parts.password is not None else None
        netloc = parts.netloc.rsplit("@", 1)
        host = netloc[-1]
        user = quote(unquote(parts.username), safe="") if parts.username else ""
        netloc = f"{user}@{host}" if user else host
        query, password = _split_query(parts.query, password)
        return cls(urlunsplit((parts.scheme, netloc, parts.path, query, "")), password)

    @property
    def dbname(self) -> str:
        return unquote(urlsplit(self.url).path.lstrip("/")) or ""

    @property
    def address(self) -> tuple[str, str, str]:
        """(host, port, database) as libpq reads them from the URL (``?host=``/``?port=``
        win; defaults: the local socket, 5432, the user's name)."""
        p = urlsplit(self.url)
        query = dict(parse_qsl(p.query))
        host = query.get("host") or p.hostname or ""
        try:
            port = query.get("port") or str(p.port or 5432)
        except ValueError:
            port = p.netloc.rpartition(":")[2]
        return (host.lower(), port, self.dbname or query.get("dbname")
                or unquote(p.username or ""))

    def with_dbname(self, name: str) -> "DatabaseURL":
        p = urlsplit(self.url)
        return DatabaseURL(urlunsplit((p.scheme, p.netloc, "/" + quote(name, safe=""), p.query,
                                       "")), self.password)

    @property
    def conninfo(self) -> str:
        """For psycopg (in-process only; never logged)."""
        if self.password is None:
            return self.url
        p = urlsplit(self.url)
        user, _, host = p.netloc.rpartition("@")
        netloc = f"{user}:{quote(self.password, safe='')}@{host}"
        return urlunsplit((p.scheme, netloc, p.path, p.query, ""))

    def child_env(self) -> dict:
        """pg_dump's / pg_restore's whole environment: libpq's variables and the password."""
        from kestra_ops.adapters import childenv

        return childenv.for_postgres(self.password)

    def mask(self, text: str) -> str:
        if self.password:
            text = text.replace(self.password, "***").replace(quote(self.password, safe=""), "***")
        return text

    @property
    def sslmode(self) -> str | None:
        """The URL's ``sslmode`` (None: not in the URL)."""
        return self.param("sslmode")

    def param(self, key: str) -> str | None:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True)).get(key)

    def with_params(self, **params: str) -> "DatabaseURL":
        """This URL with ``params`` set in its query (replacing the same keys)."""
        p = urlsplit(self.url)
        pairs = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True)
                 if k not in params]
        pairs += [(k, v) for k, v in params.items() if v is not None]
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='/:,')}" for k, v in pairs)
        return DatabaseURL(urlunsplit((p.scheme, p.netloc, p.path, query, "")), self.password)

    def __str__(self) -> str:
        return self.url


def _split_query(query: str, password: str | None) -> tuple[str, str | None]:
    """The query without ``password`` (returned apart; libpq decodes keys as values, so
    ``pass%77ord`` counts); two different passwords or an ``sslpassword`` are refused."""
    if not query:
        return query, password
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidInput("database URL: its query string is not key=value&...") from None
    kept = []
    for key, value in pairs:
        if key == "sslpassword":
            raise InvalidInput("database URL: sslpassword cannot be passed safely to pg_dump "
                               "(it would show on its command line): use an unencrypted client "
                               "key readable only by you, or drop the parameter")
        if key == "password":
            if password is not None and value != password:
                raise InvalidInput("database URL: two different passwords (user:pass@ and "
                                   "?password=): give one")
            password = value
            continue
        kept.append(f"{quote(key, safe='')}={quote(value, safe='/:,')}")
    return "&".join(kept), password
