"""Database URLs as the deployment guide writes them, in the async form the engine needs.

The guide writes plain URLs (``postgresql://...``, ``sqlite:///...``); the async driver is
chosen here so nobody has to know SQLAlchemy's ``+asyncpg`` spelling. The settings validate
``DATABASE_URL`` with it at start-up, and the engine is built from its result.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
POSTGRES_ALIASES = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
# libpq's certificate parameters, and the variables asyncpg reads them from instead.
CERTIFICATE_PARAMETERS = {
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
}


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "is not a database URL (expected postgresql://... or sqlite:///...)"
        ) from None
    backend = "postgresql" if parsed.drivername in POSTGRES_ALIASES else parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {parsed.drivername!r}; use postgresql or sqlite")
    if backend == "postgresql" and not parsed.database:
        raise ValueError("names no database (postgresql://user:password@host:5432/dbname)")
    return parsed.set(drivername=backend)


def _asyncpg_tls(parsed: URL) -> URL:
    """libpq's ``sslmode`` (what every PostgreSQL guide writes) as asyncpg's ``ssl``.

    asyncpg takes the same mode names under another key; passed through unchanged, sslmode
    would reach asyncpg.connect() as an unknown argument. Certificates come from the usual
    PGSSLROOTCERT / PGSSLCERT / PGSSLKEY variables, which asyncpg reads itself; libpq's
    file parameters in the URL would reach asyncpg.connect() as unknown arguments (a
    TypeError on every connection), so they are refused here, at start-up.
    """
    for name, variable in CERTIFICATE_PARAMETERS.items():
        if name in parsed.query:
            raise ValueError(f"{name} in the URL is not supported; set {variable} instead")
    mode = parsed.query.get("sslmode")
    if mode is None:
        return parsed
    if not isinstance(mode, str) or mode not in SSL_MODES:
        raise ValueError(f"sslmode must be one of {', '.join(sorted(SSL_MODES))}")
    return parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})


def normalize_database_url(url: str) -> URL:
    """The async form of ``url``: asyncpg for PostgreSQL, aiosqlite for SQLite.

    Raises ValueError naming the problem when ``url`` is not one the service can use.
    """
    parsed = _parse(url)
    if parsed.drivername == "postgresql":
        parsed = _asyncpg_tls(parsed)
    return parsed.set(drivername=ASYNC_DRIVERS[parsed.drivername])
