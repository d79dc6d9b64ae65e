"""TLS to PostgreSQL with libpq's ``sslmode`` in DATABASE_URL, as deployment guides write it.

A throwaway server with ``ssl = on`` and a self-signed certificate for 127.0.0.1/localhost.
The app translates ``sslmode`` to asyncpg's ``ssl``; the CA for ``verify-ca``/``verify-full``
comes from ``PGSSLROOTCERT``, which asyncpg reads itself.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from app.cache import CacheManager
from app.cli import upgrade_database
from app.database import Database
from tests.conftest import make_settings
from tests.faults.conftest import (
    ThrowawayPostgres,
    TlsFiles,
    app_command,
    cli_env,
    postgres_server,
)
from tests.faults.support import app_client

DB_NAME = "crypto"
SSL_OF_THIS_CONNECTION = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture(scope="module")
async def tls_postgres(
    postgres_template: Path, tls_files: TlsFiles
) -> AsyncIterator[ThrowawayPostgres]:
    """One TLS server for the module: these tests only connect, they never stop it."""
    with postgres_server(postgres_template) as server:
        await asyncio.to_thread(server.stop, "fast")
        server.enable_tls(tls_files)
        await asyncio.to_thread(server.start)
        await server.create_database(DB_NAME)
        # Migrations use the app's engine too: run them over TLS.
        await asyncio.to_thread(upgrade_database, server.url(DB_NAME, "sslmode=require"))
        yield server


async def ssl_in_use(url: str) -> tuple[bool, str | None]:
    """(TLS on?, protocol) of a connection made by the app's engine for ``url``."""
    database = Database.from_url(url, pool_size=1, max_overflow=0)
    try:
        async with database.engine.connect() as connection:
            row = (await connection.execute(text(SSL_OF_THIS_CONNECTION))).one()
        return bool(row.ssl), row.version
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("query", "root_cert", "expected_tls"),
    [
        ("sslmode=require", None, True),
        ("sslmode=disable", None, False),
        ("sslmode=prefer", None, True),
        ("sslmode=verify-ca", "cert", True),
        ("sslmode=verify-full", "cert", True),
    ],
)
async def test_sslmode_decides_whether_the_connection_is_encrypted(
    tls_postgres: ThrowawayPostgres,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    root_cert: str | None,
    expected_tls: bool,
) -> None:
    if root_cert:
        monkeypatch.setenv("PGSSLROOTCERT", str(tls_files.cert))
    else:
        monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    tls, version = await ssl_in_use(tls_postgres.url(DB_NAME, query))
    assert tls is expected_tls
    print(f"\n[pg tls] ?{query} -> ssl={tls} ({version})")


async def test_the_app_serves_over_tls(
    tls_postgres: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    url = tls_postgres.url(DB_NAME, "sslmode=require")
    database = Database.from_url(url, pool_size=2, max_overflow=0)
    async with app_client(database, CacheManager(), DATABASE_URL=url, LOG_LEVEL="WARNING") as http:
        responses = await asyncio.gather(
            http.get("/health/db"), http.get("/api/v1/cryptocurrencies")
        )
        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        async with database.engine.connect() as connection:
            row = (await connection.execute(text(SSL_OF_THIS_CONNECTION))).one()
        assert row.ssl is True
        # Every connection the app's pool holds (the admin's is to another database).
        pooled = await tls_postgres.fetch(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            "WHERE a.datname = $1",
            DB_NAME,
        )
    assert pooled and all(r["ssl"] for r in pooled), pooled
    print(f"\n[pg tls] app over ?sslmode=require: {len(pooled)} pooled connection(s), all TLS")


async def test_verify_full_refuses_a_certificate_from_another_ca(
    tls_postgres: ThrowawayPostgres, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSSLROOTCERT", str(tls_files.other_cert))
    url = tls_postgres.url(DB_NAME, "sslmode=verify-full")
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        await ssl_in_use(url)
    database = Database.from_url(url, pool_size=1, max_overflow=0)
    async with app_client(database, CacheManager(), DATABASE_URL=url, LOG_LEVEL="WARNING") as http:
        health = await http.get("/health/db")
        read = await http.get("/api/v1/cryptocurrencies")
    assert health.status_code == 503, health.text
    assert read.status_code == 503, read.text
    assert read.json()["type"].endswith("/database-unavailable")


async def test_require_refuses_a_server_without_tls(
    throwaway_postgres: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await ssl_in_use(throwaway_postgres.url("postgres", "sslmode=require"))
    assert await ssl_in_use(throwaway_postgres.url("postgres", "sslmode=prefer")) == (False, None)


async def test_a_certificate_path_in_the_url_is_refused_in_one_line(
    tls_postgres: ThrowawayPostgres, tls_files: TlsFiles, tmp_path: Path
) -> None:
    """libpq's ``sslrootcert=`` is what many providers' URLs carry; asyncpg does not take it
    as an argument, so it must be refused at start-up rather than fail every connection."""
    url = tls_postgres.url(DB_NAME, f"sslmode=verify-full&sslrootcert={tls_files.cert}")
    result = await asyncio.to_thread(
        subprocess.run,
        app_command("db", "upgrade"),
        env=cli_env(DATABASE_URL=url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: invalid configuration: DATABASE_URL: sslrootcert in the URL is not supported; "
        "set PGSSLROOTCERT instead"
    ]


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [("sslcert", "PGSSLCERT"), ("sslkey", "PGSSLKEY"), ("sslcrl", "PGSSLCRL")],
)
def test_other_certificate_files_in_the_url_are_refused(parameter: str, variable: str) -> None:
    with pytest.raises(ValidationError, match=f"{parameter} in the URL .* set {variable}"):
        make_settings(DATABASE_URL=f"postgresql://u@db:5432/crypto?sslmode=require&{parameter}=/x")
