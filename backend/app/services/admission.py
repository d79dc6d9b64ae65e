"""Admission control: how much heavy work one caller, and everyone together, has in flight.

A forecast fits models for seconds and an ingest writes many rows. Without a bound one client
that sends 32 at once takes every worker thread and database connection from everybody else.
Each API process counts its heavy requests per caller (API key, or address without one) and
in total: past the caller's bound the answer is 429, so only that caller waits; past the total
it is 503, and everyone waits a moment; both carry Retry-After. Nothing queues: a refused
request has done no work. The counts are per process, so N processes admit up to N times
the bounds; set them for one process's share of the machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ServerBusy, TooManyRequests


class Admission:
    def __init__(self, work: str, per_caller: int, total: int, retry_after: int = 2) -> None:
        self.work = work  # what is counted, for the messages: "forecasts", "ingests"
        self.per_caller = per_caller
        self.total = total
        self.retry_after = retry_after
        self._by_caller: Counter[str] = Counter()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def slot(self, caller: str) -> Iterator[None]:
        """Hold one unit of work for ``caller`` while the block runs, or refuse at once."""
        # One event loop, no await between the checks and the counts: nothing interleaves.
        if self._by_caller[caller] >= self.per_caller:
            raise TooManyRequests(
                f"this API key (or address) has {self.per_caller} {self.work} in progress, "
                "as many as it may; retry when one has finished",
                retry_after=self.retry_after,
            )
        if self._in_flight >= self.total:
            raise ServerBusy(
                f"the server has {self.total} {self.work} in progress; retry shortly",
                retry_after=self.retry_after,
            )
        self._by_caller[caller] += 1
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._by_caller[caller] -= 1
            if not self._by_caller[caller]:
                del self._by_caller[caller]
