"""The market_data row as both write paths see it: its columns and what an upsert did.

Shared by the portable path (`market_data`) and PostgreSQL's COPY path (`market_data_pg`),
so neither has to import the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = (
    "cryptocurrency_id",
    "timestamp",
    "open_price",
    "high_price",
    "low_price",
    "close_price",
    "volume",
    "market_cap",
    "data_source",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )
