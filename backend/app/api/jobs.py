"""Background jobs: start one now, and read any job's status (periodic ones included)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import (
    API_RESPONSES,
    AUTH_RESPONSES,
    BODY_RESPONSES,
    JsonBody,
    WriteAccess,
)
from app.errors import NotFound
from app.jobs.records import JobQueue, JobRecord
from app.market import Horizon
from app.schemas.coins import Symbol

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=API_RESPONSES)


class ScoreJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["score_predictions"]


class PredictJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["make_predictions"]
    symbols: list[Symbol] | None = Field(default=None, max_length=100)
    horizons: list[Horizon] | None = Field(default=None, max_length=4)


class BackfillJob(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["backfill"]
    symbol: Symbol


JobRequest = Annotated[ScoreJob | PredictJob | BackfillJob, Field(discriminator="name")]
QUEUE_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"description": "The job queue (Redis) cannot be reached."}
}


def _queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.jobs
    return queue


@router.post(
    "",
    response_model=JobRecord,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        422: {"description": "Unknown job or bad arguments."},
        **AUTH_RESPONSES,
        **BODY_RESPONSES,
        **QUEUE_DOWN,
    },
    dependencies=[WriteAccess, JsonBody],
)
async def start_job(body: JobRequest, request: Request) -> JobRecord:
    """Queue a job now (the same functions the schedule runs); poll its `id`."""
    arguments = body.model_dump(mode="json", exclude={"name"}, exclude_none=True)
    record = await _queue(request).enqueue(body.name, arguments)
    assert record is not None  # only an explicit job id can collide
    return record


@router.get(
    "/{job_id}",
    response_model=JobRecord,
    responses={404: {"description": "No such job (or its record expired)."}, **QUEUE_DOWN},
)
async def get_job(
    job_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9:_.-]{1,200}$")], request: Request
) -> JobRecord:
    record = await _queue(request).get(job_id)
    if record is None:
        raise NotFound("no job with this id (results are kept for a day)")
    return record
