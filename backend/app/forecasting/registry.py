"""Model registry: look forecasters up by name (and optionally code version).

Models register themselves with the :func:`register` decorator under ``(name, code_version)``.
Keeping old versions registered side by side lets a stored forecast be reproduced by the exact
code that made it; ``version=None`` means the latest one.
"""

from __future__ import annotations

from typing import Any

from app.forecasting.base import Forecaster

BASELINE: str = "random_walk"
DEFAULT_MODELS: tuple[str, ...] = (
    "random_walk",
    "random_walk_drift",
    "auto_ets",
    "auto_theta",
    "lightgbm_returns",
)

_REGISTRY: dict[tuple[str, str], type[Forecaster]] = {}


class UnknownModel(KeyError):
    """No model is registered under the requested name (or name and version)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument, quotes included.
        return self.message


def register(cls: type[Forecaster]) -> type[Forecaster]:
    """Class decorator adding ``cls`` under ``(cls.name, cls.code_version)``."""
    key = (cls.name, cls.code_version)
    existing = _REGISTRY.get(key)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"{cls.__qualname__} and {existing.__qualname__} are both registered as "
            f"{cls.name!r} version {cls.code_version!r}; bump code_version or rename"
        )
    _REGISTRY[key] = cls
    return cls


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted({name for name, _ in _REGISTRY})


def model_versions(name: str) -> list[str]:
    """Registered code versions of ``name``, oldest first."""
    return sorted((v for n, v in _REGISTRY if n == name), key=_version_key)


def get_model(name: str, version: str | None = None, **params: Any) -> Forecaster:
    """A new, unfitted instance of ``name`` built with ``params`` (keyword constructor args)."""
    versions = model_versions(name)
    if not versions:
        raise UnknownModel(f"unknown model {name!r}; available models: {', '.join(model_names())}")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise UnknownModel(
            f"model {name!r} has no version {version!r}; registered versions: {', '.join(versions)}"
        )
    return _REGISTRY[(name, chosen)](**params)


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order "2" < "10" and "1.2" < "1.10": numeric parts compare as numbers, others as text."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in version.split("."))
