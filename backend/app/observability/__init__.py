"""Logs and metrics: JSON log lines with the request id, Prometheus collectors."""
