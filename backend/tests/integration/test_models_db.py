"""The database itself enforces the spec's constraints, whatever the client does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import MarketData, Prediction
from tests.integration.factories import T0, make_candle, make_coin, make_prediction


async def _refused(session: AsyncSession, coro: object) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught:
        async with session.begin_nested():
            await coro  # type: ignore[misc]
    return caught.value


async def test_rows_round_trip_with_utc_timestamps(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session, symbol="RT1", coin_gecko_id="round-trip")
    local = datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=-5)))
    await make_candle(db_session, coin, timestamp=local)
    db_session.expunge_all()
    stored = (await db_session.execute(select(MarketData))).scalars().all()
    assert [row.timestamp for row in stored] == [datetime(2024, 3, 1, 19, 0, tzinfo=UTC)]
    raw = await db_session.execute(text("SELECT timestamp FROM market_data"))
    assert str(raw.scalar_one()).startswith("2024-03-01 19:00:00")
    assert coin.is_active is True
    assert coin.created_at.tzinfo is UTC


@pytest.mark.parametrize(
    "fields",
    [
        {"open_price": -1.0},
        {"close_price": -0.01},
        {"low_price": -5.0},
        {"high_price": 80.0, "low_price": 90.0},
        {"volume": -1.0},
        {"market_cap": -10.0},
    ],
)
async def test_candle_constraints_refuse_bad_prices(
    db_session: AsyncSession, fields: dict[str, float]
) -> None:
    coin = await make_coin(db_session)
    await _refused(db_session, make_candle(db_session, coin, **fields))
    count = await db_session.scalar(select(func.count()).select_from(MarketData))
    assert count == 0


async def test_one_candle_per_coin_and_timestamp(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    await make_candle(db_session, coin)
    await _refused(db_session, make_candle(db_session, coin))
    other = await make_coin(db_session)
    await make_candle(db_session, other)  # same time, another coin: allowed


async def test_symbols_are_unique(db_session: AsyncSession) -> None:
    await make_coin(db_session, symbol="DUP")
    await _refused(db_session, make_coin(db_session, symbol="DUP"))


async def test_candles_need_an_existing_coin(db_session: AsyncSession) -> None:
    missing_coin = SimpleNamespace(id=999_999)
    await _refused(db_session, make_candle(db_session, missing_coin))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"target_timestamp": T0},
        {"target_timestamp": T0 - timedelta(minutes=1)},
        {"confidence_score": 1.01},
        {"confidence_score": -0.1},
        {"predicted_price": -3.0},
    ],
)
async def test_prediction_constraints(db_session: AsyncSession, fields: dict[str, object]) -> None:
    coin = await make_coin(db_session)
    await _refused(db_session, make_prediction(db_session, coin, **fields))


async def test_one_prediction_per_model_coin_horizon_and_target(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    await make_prediction(db_session, coin)
    await make_prediction(db_session, coin, horizon="4h")  # another horizon is another key
    await _refused(db_session, make_prediction(db_session, coin))


async def test_prediction_accepts_boundaries_and_json(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    for model, confidence in (("a", 0.0), ("b", 1.0), ("c", None)):
        await make_prediction(db_session, coin, model_name=model, confidence_score=confidence)
    db_session.expunge_all()
    rows = (await db_session.execute(select(Prediction))).scalars().all()
    assert sorted(r.confidence_score for r in rows if r.confidence_score is not None) == [0, 1]
    assert all(r.features_used == {"inputs": ["close"]} for r in rows)


SPEC_COLUMNS_INSERT = (
    "INSERT INTO predictions (cryptocurrency_id, prediction_timestamp, target_timestamp, "
    "predicted_price, confidence_score, model_name, model_version, features_used, "
    "actual_price, error, created_at) VALUES (:coin, :made, :target, 101.0, 0.5, :model, '1', "
    "NULL, NULL, NULL, '2024-01-01 00:00:00')"
)


@pytest.mark.parametrize(
    ("span", "horizon"),
    [
        (timedelta(hours=1), "1h"),
        (timedelta(hours=24), "24h"),
        (timedelta(days=7), "7d"),
        (timedelta(hours=2), "7200s"),  # no named horizon: the span in seconds, still a key
    ],
)
async def test_a_row_of_the_spec_columns_alone_is_valid(
    db_session: AsyncSession, span: timedelta, horizon: str
) -> None:
    """The spec's predictions table has no horizon: the database derives it."""
    coin = await make_coin(db_session)
    made = T0.replace(tzinfo=None)
    values = {"coin": coin.id, "made": made, "target": made + span, "model": "spec"}
    await db_session.execute(text(SPEC_COLUMNS_INSERT), values)
    stored = (await db_session.execute(select(Prediction))).scalars().one()
    assert stored.horizon == horizon
    # The derived horizon is part of the key: the same forecast again is refused.
    await _refused(db_session, db_session.execute(text(SPEC_COLUMNS_INSERT), values))
