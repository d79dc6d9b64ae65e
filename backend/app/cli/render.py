"""The Rich tables the commands print."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from app.schemas.predictions import PredictionOut, PredictionRun
    from app.services.imports import ImportReport
    from app.services.seed import SeedReport


def seed_table(report: SeedReport) -> Table:
    table = Table("series loaded", title="demo data")
    for line in report.series_loaded:
        table.add_row(line)
    return table


def import_table(report: ImportReport) -> Table:
    table = Table("symbol", "timeframe", "received", "inserted", "updated", "unchanged", "skipped")
    table.add_row(
        report.symbol,
        report.timeframe.value if report.timeframe else "-",
        *(str(n) for n in (report.received, report.inserted, report.updated, report.unchanged)),
        str(len(report.skipped)),
    )
    return table


def predictions_table(run: PredictionRun) -> Table:
    table = Table(
        "symbol",
        "horizon",
        "model",
        "target (UTC)",
        "predicted",
        "80% band",
        "confidence",
        title=f"{run.stored} predictions stored",
    )
    for p in run.predictions:
        champion = run.champion.get(p.symbol, {}).get(p.horizon.value) == p.model_name
        table.add_row(
            p.symbol,
            p.horizon.value,
            p.model_name + (" *" if champion else ""),
            f"{p.target_timestamp:%Y-%m-%d %H:%M}",
            f"{p.predicted_price:,.2f}",
            f"{p.lower_80:,.2f} - {p.upper_80:,.2f}" if p.lower_80 and p.upper_80 else "",
            _confidence(p),
        )
    return table


def _confidence(p: PredictionOut) -> str:
    if p.confidence_score is None:
        return ""
    return f"{p.confidence_score:.2f} within ±{(p.confidence_tolerance or 0) * 100:g}%"


def leaderboard_table(rows: Sequence[Mapping[str, object]], champion: object) -> Table:
    table = Table(
        "#",
        "model",
        "rel. MAE",
        "MAE",
        "MASE",
        "dir. acc.",
        "up share",
        "cov. 80%",
        "cov. 95%",
        "DM p",
    )
    for row in rows:
        table.add_row(
            str(row["rank"]),
            str(row["model"]) + (" *" if row["model"] == champion else ""),
            _number(row["relative_mae"], ".3f"),
            _number(row["mae"], ",.2f"),
            _number(row["mase"], ".3f"),
            _number(row["directional_accuracy"], ".1%"),
            _number(row["up_share"], ".1%"),
            _number(row["coverage_80"], ".1%"),
            _number(row["coverage_95"], ".1%"),
            _number(row["dm_p_value"], ".3f"),
        )
    return table


def _number(value: object, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def keys_table(rows: Sequence[Mapping[str, object]]) -> Table:
    table = Table("prefix", "name", "scopes", "created", "expires", "state", "last used")
    for row in rows:
        table.add_row(
            str(row["prefix"]),
            str(row["name"]),
            ", ".join(row["scopes"]),  # type: ignore[arg-type]
            str(row["created_at"])[:16],
            str(row["expires_at"] or "never")[:16],
            "revoked" if row["revoked"] else "active",
            str(row["last_used_at"] or "-")[:16],
        )
    return table
