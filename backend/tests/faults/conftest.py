"""Throwaway PostgreSQL and Redis servers for the fault-injection tests.

Every server a test kills, stops or reconfigures is its own: started here on a free loopback
port inside a temporary directory, and removed afterwards even when the test fails. The
machine's shared servers (PostgreSQL on 5432, Redis on 6379) are never signalled, stopped or
have their connections terminated by anything in this folder.

PostgreSQL's ``initdb`` and ``postgres`` refuse to run as root; when the tests run as root,
the server runs as the ``postgres`` OS user on a data directory it owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import free_port

BACKEND = Path(__file__).resolve().parents[2]
FAULTS_DIR = Path(__file__).resolve().parent
SERVER_START_TIMEOUT_S = 30


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: kills, stops or reconfigures throwaway servers of its own"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest hook sees the whole session's items: mark only this folder's.
    for item in items:
        if FAULTS_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.faults)


# --------------------------------------------------------------------------- processes


def _as_postgres_user() -> list[str]:
    """The prefix that runs a command as the ``postgres`` OS user when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _chown_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _postgres_bin() -> Path | None:
    configured = os.environ.get("PG_BIN")
    if configured:
        return Path(configured)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


PG_BIN = _postgres_bin()
REDIS_SERVER = shutil.which("redis-server")
OPENSSL = shutil.which("openssl")


def _run(command: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cli_env(**overrides: str) -> dict[str, str]:
    """Environment for an app subprocess: only the variables given here configure it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "JOBS_", "TEST_", "PG"))
    }
    env.update(
        {
            "DEBUG": "true",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_ENABLED": "false",
            "JOBS_ENABLED": "false",
            "PYTHONPATH": str(BACKEND),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def app_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


# --------------------------------------------------------------------------- TLS files


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate (it is its own CA) for 127.0.0.1/localhost, plus an unrelated
    one to stand for a CA that did not sign the server's certificate."""

    directory: Path
    cert: Path
    key: Path
    other_cert: Path


def _self_signed(directory: Path, name: str, common_name: str) -> tuple[Path, Path]:
    assert OPENSSL is not None
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    made = _run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ]
    )
    assert made.returncode == 0, made.stderr
    key.chmod(0o600)
    return cert, key


@pytest.fixture(scope="session")
def tls_files() -> Iterator[TlsFiles]:
    if OPENSSL is None:
        pytest.skip("openssl is not on PATH")
    directory = Path(tempfile.mkdtemp(prefix="crypto-faults-tls-"))
    try:
        cert, key = _self_signed(directory, "server", "localhost")
        other_cert, _ = _self_signed(directory, "other", "localhost")
        yield TlsFiles(directory, cert, key, other_cert)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- PostgreSQL


class ThrowawayPostgres:
    """A PostgreSQL server of our own: start, stop (any mode), restart, terminate backends.

    ``url(db)`` is a plain ``postgresql://`` URL as the deployment guide writes it.
    """

    user = "postgres"

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "server.log"

    @classmethod
    def from_template(cls, template: Path) -> ThrowawayPostgres:
        root = Path(tempfile.mkdtemp(prefix="crypto-faults-pg-"))
        _chown_to_server_user(root)
        server = cls(root, free_port())
        copied = _run(["cp", "-a", str(template), str(server.data)])
        assert copied.returncode == 0, copied.stderr
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {server.port}\n")
        return server

    def url(self, database: str = "postgres", query: str = "") -> str:
        base = f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"
        return f"{base}?{query}" if query else base

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert PG_BIN is not None
        command = [*_as_postgres_user(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]
        return _run(command, timeout=SERVER_START_TIMEOUT_S + 10)

    def start(self) -> None:
        started = self._pg_ctl(
            "-l", str(self.log), "-w", "-t", str(SERVER_START_TIMEOUT_S), "start"
        )
        if started.returncode != 0:
            raise AssertionError(f"postgres did not start: {started.stderr}\n{_tail(self.log)}")

    def stop(self, mode: str = "immediate", *, wait: bool = True) -> None:
        """``pg_ctl stop -m mode``; without ``wait``, only signal the shutdown (a smart one
        then refuses new connections until the last session ends)."""
        waiting = ["-w", "-t", str(SERVER_START_TIMEOUT_S)] if wait else ["-W"]
        stopped = self._pg_ctl("-m", mode, *waiting, "stop")
        if stopped.returncode != 0:
            raise AssertionError(f"postgres did not stop: {stopped.stderr}\n{_tail(self.log)}")

    @property
    def running(self) -> bool:
        return self._pg_ctl("status").returncode == 0

    def enable_tls(self, files: TlsFiles) -> None:
        """Install the certificate and turn ``ssl`` on; takes effect at the next start."""
        for source, name in ((files.cert, "server.crt"), (files.key, "server.key")):
            target = self.data / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            _chown_to_server_user(target)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")

    async def connect(self, database: str = "postgres") -> Any:
        """A plain asyncpg connection, outside the app, for setting up and checking."""
        return await asyncpg.connect(
            host="127.0.0.1", port=self.port, user=self.user, database=database, timeout=5
        )

    async def fetch(self, sql: str, *args: object, database: str = "postgres") -> list[Any]:
        connection = await self.connect(database)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    async def create_database(self, name: str) -> str:
        await self.fetch(f'CREATE DATABASE "{name}"')
        return self.url(name)

    async def backend_pids(self, database: str) -> set[int]:
        rows = await self.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return {int(row["pid"]) for row in rows}

    async def terminate_connections(self, database: str) -> set[int]:
        """Terminate every backend connected to ``database`` (but the admin's own)."""
        rows = await self.fetch(
            "SELECT pid, pg_terminate_backend(pid) AS done FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return {int(row["pid"]) for row in rows if row["done"]}

    def destroy(self) -> None:
        """Stop the server whatever its state, then delete its directory."""
        try:
            with contextlib.suppress(AssertionError):
                if self.running:
                    self.stop("immediate")
            if self.running:  # pg_ctl could not stop it: end our own postmaster by its id
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[Path]:
    """One ``initdb`` per session; each test copies the directory (about 0.1 s)."""
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    root = Path(tempfile.mkdtemp(prefix="crypto-faults-pgtemplate-"))
    _chown_to_server_user(root)
    data = root / "data"
    try:
        made = _run(
            [
                *_as_postgres_user(),
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]
        )
        assert made.returncode == 0, made.stderr
        with (data / "postgresql.conf").open("a") as conf:
            # Loopback TCP only: no Unix socket that could collide with the shared server's.
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 40\n"
                # Durability against an OS crash is not under test; a server crash
                # (immediate stop) is still recovered from the WAL.
                "fsync = off\n"
            )
        yield data
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(template: Path) -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres.from_template(template)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def throwaway_postgres(postgres_template: Path) -> Iterator[ThrowawayPostgres]:
    with postgres_server(postgres_template) as server:
        yield server


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- Redis


def _redis_answers(port: int, tls: bool) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as raw:
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                with context.wrap_socket(raw) as wrapped:
                    wrapped.sendall(b"PING\r\n")
                    return wrapped.recv(16).startswith(b"+PONG")
            raw.sendall(b"PING\r\n")
            return raw.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class ThrowawayRedis:
    """A redis-server of our own on a fixed port (TLS-only when given certificates), to kill
    and restart at will. No persistence: a restarted server starts empty."""

    def __init__(self, root: Path, port: int, tls: TlsFiles | None = None) -> None:
        self.root = root
        self.port = port
        self.tls = tls
        self.log = root / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self._require().pid

    def start(self) -> None:
        assert REDIS_SERVER is not None
        command = [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--logfile", str(self.log), "--dir", str(self.root)]
        if self.tls:
            command += ["--port", "0", "--tls-port", str(self.port)]
            command += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            command += ["--tls-ca-cert-file", str(self.tls.cert), "--tls-auth-clients", "no"]
        else:
            command += ["--port", str(self.port)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._process = process
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _redis_answers(self.port, self.tls is not None):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not start:\n{_tail(self.log)}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to clients."""
        process = self._require()
        process.kill()
        process.wait(timeout=10)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _require(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "redis-server is not running"
        return self._process


@contextlib.contextmanager
def _redis_server(tls: TlsFiles | None) -> Iterator[ThrowawayRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH")
    root = Path(tempfile.mkdtemp(prefix="crypto-faults-redis-"))
    server = ThrowawayRedis(root, free_port(), tls)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    with _redis_server(None) as server:
        yield server


@pytest.fixture
def throwaway_tls_redis(tls_files: TlsFiles) -> Iterator[ThrowawayRedis]:
    with _redis_server(tls_files) as server:
        yield server


# --------------------------------------------------------------------------- the API server


class AppServer:
    """``cryptopredict serve`` in a subprocess; its stderr goes to a file (a pipe nobody
    reads could fill up and stall the server)."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = workdir / f"serve-{self.port}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            app_command("serve", "--port", str(self.port)),
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    def wait_until_up(self, timeout: float = SERVER_START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited during start-up:\n{self.stderr()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start within {timeout} s")
            time.sleep(0.05)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        """Stop the server if it still runs (SIGTERM, then SIGKILL) and close the log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._stderr.close()


@contextlib.contextmanager
def app_server(env: dict[str, str], workdir: Path) -> Iterator[AppServer]:
    server = AppServer(env, workdir)
    try:
        server.wait_until_up()
        yield server
    finally:
        server.close()
