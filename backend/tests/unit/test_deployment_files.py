"""The container files say what the README promises (no Docker engine runs here to build them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.config import Settings

REPO = Path(__file__).resolve().parents[3]
BACKEND = REPO / "backend"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_postgres_redis_and_the_api_with_healthchecks() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "backend"} <= set(services)
    for name in ("postgres", "redis", "backend"):
        assert "healthcheck" in services[name], name
    backend = services["backend"]
    assert backend["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert backend["depends_on"]["redis"]["condition"] == "service_healthy"
    assert backend["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert backend["environment"]["REDIS_URL"].startswith("redis://")


def test_compose_redis_evicts_instead_of_refusing_writes() -> None:
    command = _compose()["services"]["redis"]["command"]
    assert "allkeys-lru" in command
    assert "--maxmemory" in command


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    lines = [line.strip() for line in (BACKEND / "Dockerfile").read_text().splitlines()]
    users = [line for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1].split()[1].split(":")[0] not in {"0", "root"}
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any("requirements.txt" in line for line in lines if line.startswith("RUN pip"))


def test_env_example_names_every_setting_and_loads() -> None:
    example = BACKEND / ".env.example"
    text = example.read_text()
    for name in Settings.model_fields:
        assert name in text, name
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.DEBUG is True
    assert settings.DATABASE_URL.startswith("sqlite")


def test_compose_runs_workers_on_a_queue_redis_that_never_evicts() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    assert worker["command"] == ["cryptopredict", "worker"]
    assert worker["environment"]["JOBS_REDIS_URL"] == "redis://queue:6379/0"
    assert services["backend"]["environment"]["JOBS_REDIS_URL"] == "redis://queue:6379/0"
    queue = services["queue"]["command"]
    assert queue[queue.index("--maxmemory-policy") + 1] == "noeviction"
    assert "queue_data" in _compose()["volumes"]
