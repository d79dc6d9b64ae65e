"""Where model fits run: in a pool of processes, or in a thread of the calling process.

statsforecast's AutoETS and AutoTheta hold the GIL for tens of milliseconds at a time, so a fit
in a thread of the API process stalls its event loop: in the fairness bench two concurrent
fits held one polite client's reads up to a second. A process of its own gives the API its
interpreter back. The pool starts lazily (an API that never forecasts pays nothing) with the
"spawn" method (forking a process that runs an event loop and threads is unsafe), and each
process imports the forecasting stack once, about 300 MB: size it for the machine.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np

from app.services.predictions import ForecastBatch, forecast_models


class ProcessFits:
    """A `services.predictions.Fit` that runs `forecast_models` in worker processes."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(self, closes: np.ndarray, steps: int, models: Any) -> ForecastBatch:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.processes, mp_context=get_context("spawn"))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, forecast_models, closes, steps, list(models))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
