"""The long-running processes: the API server and the job worker."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from app.cli.runtime import fail, settings_or_exit


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings_or_exit()  # fail with a one-line message before uvicorn prints a traceback
    uvicorn.run(
        "app.main:app", host=host, port=port, reload=reload, workers=workers, proxy_headers=True
    )


def worker(
    burst: Annotated[
        bool, typer.Option("--burst", help="Run the queued jobs, then exit (for scripts).")
    ] = False,
    queue: Annotated[
        Literal["scheduled", "user", "all"],
        typer.Option(help="The queues to serve: to run them on separate machines."),
    ] = "all",
) -> None:
    """Run the job worker: the scheduled queue (scoring every 5 minutes, predictions hourly,
    backfills) and the user queue (backtests, jobs started over the API), each with its own
    job slots. Start as many as you like, on as many machines: each periodic run happens
    once."""
    import asyncio

    from app.jobs.worker_process import serve

    settings = settings_or_exit()
    if not settings.queue_redis_url:
        fail(
            "the worker needs REDIS_URL or JOBS_REDIS_URL (the queue lives in Redis); without it, "
            "`cryptopredict serve` runs the periodic jobs in-process",
            2,
        )
    from app.observability.logging import configure_logging

    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    asyncio.run(serve(settings, queue, burst=burst))
