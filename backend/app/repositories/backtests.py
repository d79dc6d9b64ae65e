"""Queries on the backtests table: a backtest's lifecycle and the latest result per key."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Backtest


async def create(session: AsyncSession, **fields: Any) -> Backtest:
    backtest = Backtest(id=uuid.uuid4().hex, status="pending", windows_done=0, **fields)
    session.add(backtest)
    await session.flush()
    return backtest


# First key of pg_advisory_xact_lock(int, int) for backtest admission ("BTAD"; ingests
# lock per coin under "CAND").
ADMISSION_LOCK_SPACE = 0x42544144


async def lock_admission(session: AsyncSession) -> None:
    """Serialise admission until the transaction ends: the check of what is outstanding and
    the insert it allows must be one step, or two requests could both fit the last room.
    SQLite has a single writer and needs none."""
    if session.get_bind().dialect.name == "postgresql":
        lock = text("SELECT pg_advisory_xact_lock(:space, 0)")
        await session.execute(lock, {"space": ADMISSION_LOCK_SPACE})


async def outstanding(session: AsyncSession) -> list[tuple[str | None, int]]:
    """(requested_by, cost) of every pending or running backtest; cost = windows x models."""
    statement = select(Backtest.requested_by, Backtest.windows, Backtest.models).where(
        Backtest.status.in_(("pending", "running"))
    )
    rows = (await session.execute(statement)).all()
    return [(who, windows * len(models)) for who, windows, models in rows]


async def get(session: AsyncSession, backtest_id: str) -> Backtest | None:
    return await session.get(Backtest, backtest_id)


async def mark_running(
    session: AsyncSession, backtest_id: str, now: datetime, *, reclaim: bool = False
) -> bool:
    """Claim a pending backtest (or, with ``reclaim``, one left running); False when it was
    claimed or finished already."""
    claimable = ("pending", "running") if reclaim else ("pending",)
    statement = (
        update(Backtest)
        .where(Backtest.id == backtest_id, Backtest.status.in_(claimable))
        .values(status="running", started_at=now, windows_done=0)
        .execution_options(synchronize_session=False)
    )
    return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


async def release(session: AsyncSession, backtest_id: str) -> None:
    """Back to pending: its run stopped unfinished, and the queue will deliver it again."""
    statement = (
        update(Backtest)
        .where(Backtest.id == backtest_id, Backtest.status == "running")
        .values(status="pending", started_at=None, windows_done=0)
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


async def record_progress(session: AsyncSession, backtest_id: str, windows_done: int) -> None:
    statement = (
        update(Backtest)
        .where(Backtest.id == backtest_id, Backtest.status == "running")
        .values(windows_done=windows_done)
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


async def finish(
    session: AsyncSession,
    backtest_id: str,
    now: datetime,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {"finished_at": now, "result": result, "error": error}
    values["status"] = "failed" if error is not None else "succeeded"
    if error is None:
        values["windows_done"] = Backtest.windows
    statement = (
        update(Backtest)
        .where(Backtest.id == backtest_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)


async def fail_abandoned(
    session: AsyncSession, now: datetime, created_before: datetime, reason: str
) -> int:
    """Mark backtests still unfinished long after they were created as failed.

    Only old ones: another process may be running a recent one right now.
    """
    statement = (
        update(Backtest)
        .where(Backtest.status.in_(("pending", "running")), Backtest.created_at < created_before)
        .values(status="failed", error=reason, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


async def latest_succeeded(session: AsyncSession, coin_id: int, horizon: str) -> Backtest | None:
    statement = (
        select(Backtest)
        .where(
            Backtest.cryptocurrency_id == coin_id,
            Backtest.horizon == horizon,
            Backtest.status == "succeeded",
        )
        .order_by(Backtest.finished_at.desc())
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none()
