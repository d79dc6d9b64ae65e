"""`cryptopredict keys`: create prints the key once, list never shows it, revoke is final."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli import _cli_env, _cryptopredict

BACKEND = Path(__file__).resolve().parents[2]


def test_create_list_revoke(tmp_path: Path) -> None:
    env = _cli_env(DATABASE_URL=f"sqlite:///{tmp_path / 'keys.db'}", PYTHONPATH=str(BACKEND))
    assert _cryptopredict("db", "upgrade", env=env, cwd=tmp_path).returncode == 0

    made = _cryptopredict(
        "keys", "create", "--name", "ci", "-s", "write", "-s", "read", "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["key"].startswith(f"cp_{created['prefix']}_")
    assert created["scopes"] == ["read", "write"]

    listed = _cryptopredict("keys", "list", "--json", env=env, cwd=tmp_path)
    rows = json.loads(listed.stdout)
    assert [(r["prefix"], r["revoked"]) for r in rows] == [(created["prefix"], False)]
    assert created["key"] not in listed.stdout

    revoked = _cryptopredict("keys", "revoke", created["prefix"], env=env, cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    rows = json.loads(_cryptopredict("keys", "list", "--json", env=env, cwd=tmp_path).stdout)
    assert rows[0]["revoked"] is True

    again = _cryptopredict("keys", "revoke", created["prefix"], env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: no active API key with prefix '{created['prefix']}'"
    ]
    bad = _cryptopredict("keys", "create", "--name", "x", "-s", "root", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "--scope must be read, write or admin" in bad.stderr
