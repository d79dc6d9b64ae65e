"""Settings: the spec's variable names, defaults, parsing and start-up refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import (
    DEFAULT_DATABASE_URL,
    Settings,
    SettingsError,
    describe_validation_error,
    load_settings,
)

SPEC_VARIABLES = {
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "DATABASE_MAX_OVERFLOW",
    "REDIS_URL",
    "REDIS_MAX_CONNECTIONS",
    "DEBUG",
    "LOG_LEVEL",
    "SECRET_KEY",
    "CORS_ORIGINS",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SPEC_VARIABLES | {"ENVIRONMENT"}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no developer .env leaks in


def test_every_spec_variable_is_a_setting() -> None:
    assert SPEC_VARIABLES <= set(Settings.model_fields)


def test_defaults_match_the_deployment_guide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "true")
    settings = Settings()
    assert settings.DATABASE_POOL_SIZE == 20
    assert settings.DATABASE_MAX_OVERFLOW == 10
    assert settings.REDIS_MAX_CONNECTIONS == 50
    assert settings.LOG_LEVEL == "INFO"
    assert settings.DATABASE_URL == DEFAULT_DATABASE_URL
    assert settings.DATABASE_URL.startswith("sqlite")
    assert settings.REDIS_URL == ""


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:pw@db.example:5432/crypto")
    monkeypatch.setenv("DATABASE_POOL_SIZE", "7")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("SECRET_KEY", "a-long-random-production-secret-value")
    settings = Settings()
    assert settings.DATABASE_POOL_SIZE == 7
    assert settings.LOG_LEVEL == "DEBUG"
    assert settings.REDIS_URL == "redis://cache:6379/2"
    assert not settings.DATABASE_URL.startswith("sqlite")
    assert settings.DEBUG is False


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DEBUG=true\nDATABASE_MAX_OVERFLOW=3\n")
    assert Settings().DATABASE_MAX_OVERFLOW == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example", ["https://a.example"]),
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ('["https://a.example"]', ["https://a.example"]),
        ("", []),
    ],
)
def test_cors_origins_accept_comma_lists_and_json(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("CORS_ORIGINS", raw)
    assert Settings().CORS_ORIGINS == expected


@pytest.mark.parametrize("secret", [None, "", "changeme", "secret"])
def test_production_refuses_missing_or_default_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    monkeypatch.setenv("DEBUG", "false")
    if secret is not None:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings()


def test_debug_allows_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "true")
    assert load_settings().SECRET_KEY == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_POOL_SIZE", "-1"),
        ("DATABASE_MAX_OVERFLOW", "many"),
        ("REDIS_MAX_CONNECTIONS", "0"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("DATABASE_URL", "postgresql://user@host"),
        ("REDIS_URL", "http://cache:6379"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message
    assert "\n" not in message
    assert value not in message or len(value) < 3  # the message describes, it does not echo


def test_describe_validation_error_lists_every_problem() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, DEBUG=True, DATABASE_POOL_SIZE=0, REDIS_MAX_CONNECTIONS=0)  # type: ignore[call-arg]
    text = describe_validation_error(caught.value)
    assert "DATABASE_POOL_SIZE" in text
    assert "REDIS_MAX_CONNECTIONS" in text
