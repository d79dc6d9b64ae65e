"""Scheduled and queued work: scoring, prediction runs, backfills, backtests.

The job functions (`tasks`) are plain coroutines over a `JobContext`. With Redis they run on
arq workers (`cryptopredict worker`, any number, on any machines), from two queues so that
user work cannot starve the scheduled work (`queues`); without Redis the API process runs the
same functions on the same schedule itself (`local`).
"""
