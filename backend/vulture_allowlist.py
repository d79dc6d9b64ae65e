"""Names vulture cannot see used: read by a framework, a serialiser or a person, not by a call.

Each line "uses" a name, so `vulture` (run by `make lint`) stops reporting it. Add a name
here only with the reader that uses it; anything else it reports is dead code to delete.
"""

# ruff: noqa: B018
from app import main
from app.cache import CacheManager
from app.forecasting.confidence import CalibrationBucket
from app.forecasting.metrics import DMResult
from app.jobs.records import JobRecord, QueueStats
from app.models import Cryptocurrency, MarketData
from app.observability import logging as app_logging
from app.schemas import coins, health, market_data, meta, predictions

# Module __getattr__: `uvicorn app.main:app` builds the app on first access.
main.__getattr__

# Documented in the README for scripts and shells; the app itself awaits flush_all().
CacheManager.flush_all_sync

# Pydantic response fields: FastAPI serialises them, no Python code reads them.
coins.CoinOut.updated_at
health.ServiceInfo.environment
health.JobsSummary.oldest_job_age_s
market_data.CandleOut.forming
meta.TimeframeInfo.storable
meta.TimeframeInfo.queryable
meta.CandlePages.cached_limits
meta.CandlePages.max_limit
meta.Vocabulary.timeframes
meta.Vocabulary.default_models
meta.Vocabulary.candle_pages
predictions.CalibrationBucketOut.mean_confidence
predictions.CalibrationBucketOut.hit_rate
predictions.LeaderboardRow.coverage_80
predictions.LeaderboardRow.coverage_95
predictions.LeaderboardRow.dm_statistic
predictions.LeaderboardRow.dm_p_value

# Result fields stored in a backtest's JSON summary (dataclasses.asdict) or printed.
CalibrationBucket.mean_confidence
CalibrationBucket.hit_rate
DMResult.mean_difference
JobRecord.enqueued_at
QueueStats.oldest_job_age_s  # copied into health.JobsSummary by model_dump()

# ORM columns the spec defines: written by ingestion as dict rows, read over SQL.
Cryptocurrency.updated_at
MarketData.market_cap
MarketData.data_source

# The standard library's logging reads these flags on its own module.
app_logging.logging.getLogger("uvicorn.access").disabled
app_logging.logging.logThreads
app_logging.logging.logProcesses
app_logging.logging.logMultiprocessing
app_logging.logging.logAsyncioTasks
app_logging.logging._srcfile
