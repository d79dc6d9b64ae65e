"""One typed settings object, read from the environment and `.env`, validated at start-up."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.database_url import normalize_database_url

SERVICE_NAME = "Crypto Prediction API"
BACKEND_DIR = Path(__file__).resolve().parent.parent
# The embedded default: a SQLite file inside the project, so `make run` needs no server.
DEFAULT_SQLITE_PATH = BACKEND_DIR / "var" / "crypto_prediction.db"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_SQLITE_PATH}"
INSECURE_SECRET_KEYS = frozenset({"", "changeme", "change-me", "secret", "dev-secret-key"})

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]


class Settings(BaseSettings):
    """Every variable the deployment guide names, with its default."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    DATABASE_URL: str = DEFAULT_DATABASE_URL
    DATABASE_POOL_SIZE: int = Field(default=20, ge=1, le=1000)
    DATABASE_MAX_OVERFLOW: int = Field(default=10, ge=0, le=1000)

    # Empty means "no Redis": the in-process cache is used instead.
    REDIS_URL: str = ""
    REDIS_MAX_CONNECTIONS: int = Field(default=50, ge=1, le=10000)

    DEBUG: bool = False
    LOG_LEVEL: LogLevel = "INFO"
    # JSON lines for log collectors; "text" reads better in a terminal.
    LOG_FORMAT: Literal["json", "text"] = "json"
    SECRET_KEY: str = ""
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)

    ENVIRONMENT: str = "production"

    # Without Redis the API process runs the periodic jobs itself (with Redis: the workers).
    JOBS_ENABLED: bool = True
    # The job queue's Redis; empty = REDIS_URL. A cache evicts keys under memory pressure
    # (allkeys-lru), a queue must not: production gives the queue its own noeviction Redis.
    JOBS_REDIS_URL: str = ""
    # Coins whose gaps a periodic job fills from CoinGecko, comma-separated; empty = none.
    JOBS_BACKFILL_SYMBOLS: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Writes always need an API key (X-API-Key); reads only when this is false.
    PUBLIC_READS: bool = True
    # Larger request bodies get 413 (the ingest endpoint's own ceiling is also 16 MiB).
    MAX_REQUEST_BYTES: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024**3)
    # A request body must arrive whole within this many seconds, or the answer is 408: a
    # client trickling a body holds a socket and memory, and must not hold them for ever.
    REQUEST_BODY_TIMEOUT_S: float = Field(default=30.0, gt=0, le=3600)
    # Heavy requests in progress per API key (or address) and in total, in each API process:
    # past the key's bound the answer is 429, past the total 503, both with Retry-After.
    FORECASTS_PER_KEY: int = Field(default=2, ge=1, le=1000)
    FORECASTS_TOTAL: int = Field(default=4, ge=1, le=10_000)
    # Processes the API fits forecast models in (started on the first forecast, about 300 MB
    # each); 0 fits in threads of the API process, whose event loop then stalls while a fit
    # holds the GIL.
    FORECAST_PROCESSES: int = Field(default=2, ge=0, le=64)
    INGESTS_PER_KEY: int = Field(default=4, ge=1, le=1000)
    INGESTS_TOTAL: int = Field(default=8, ge=1, le=10_000)
    # Backtests pending or running, in model-windows (windows x models, baseline included):
    # per API key and for everyone. The largest request (500 windows, 11 models) fits one key.
    BACKTEST_BUDGET_PER_KEY: int = Field(default=6000, ge=1)
    BACKTEST_BUDGET_TOTAL: int = Field(default=24_000, ge=1)
    # Backtests an API process runs at once when there is no job queue (the rest wait their
    # turn, already bounded by the budget above).
    LOCAL_BACKTESTS: int = Field(default=1, ge=1, le=64)
    # Per API key (or client address without one), shared through Redis when there is one.
    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_READS: str = "600/minute"
    RATE_LIMIT_WRITES: str = "60/minute"

    # CoinGecko, for `cryptopredict backfill`: "public" needs no key; "demo" and "pro" do.
    COINGECKO_PLAN: Literal["public", "demo", "pro"] = "public"
    COINGECKO_API_KEY: str = ""

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("JOBS_BACKFILL_SYMBOLS", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().upper() for part in value.split(",") if part.strip()]
        return value

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # The guide writes a comma-separated list; a JSON list is accepted too.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        normalize_database_url(value)  # raises ValueError naming the problem
        return value

    @field_validator("REDIS_URL", "JOBS_REDIS_URL")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("RATE_LIMIT_READS", "RATE_LIMIT_WRITES")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from limits import parse  # late: only a set rate needs it, and it takes 70 ms

        try:
            parse(value)
        except ValueError:
            raise ValueError("must read like 600/minute or 10/second") from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if not self.DEBUG and self.SECRET_KEY.strip().lower() in INSECURE_SECRET_KEYS:
            raise ValueError(
                "SECRET_KEY is missing or a known default; set a long random value "
                "(see .env.example) or DEBUG=true for development"
            )
        return self

    @property
    def queue_redis_url(self) -> str:
        return self.JOBS_REDIS_URL or self.REDIS_URL


class SettingsError(RuntimeError):
    """Settings could not be loaded; the message names each bad variable on one line."""


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {message}" if name else message)
    return "invalid configuration: " + "; ".join(parts)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
