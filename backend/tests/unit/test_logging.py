"""The JSON log formatter, the text one, and the request ids the middleware makes up."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator

import pytest

from app.middleware import request_context as observability
from app.middleware.request_context import (
    REQUEST_ID,
    _new_request_id,
    _request_id,
    _reset_request_ids,
)
from app.observability.logging import RequestIdFilter, _formatter, configure_logging, request_id_var

ASCTIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}$")
ACCESS = {"method": "GET", "path": "/x/BTC", "route": "/x/{symbol}", "status": 200}


def _logger(name: str, log_format: str = "json") -> tuple[logging.Logger, io.StringIO]:
    """A logger of its own writing through the app's formatter and filter into a buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter("json" if log_format == "json" else "text"))
    logger = logging.getLogger(f"tests.logging.{name}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_the_fixed_keys_then_the_extra_fields_in_order() -> None:
    logger, out = _logger("extra")
    logger.info("%s %s %d", "GET", "/x/{symbol}", 200, extra={**ACCESS, "duration_ms": 1.25})
    (line,) = _lines(out)
    assert list(line) == [
        "time", "level", "logger", "message", "request_id",
        "method", "path", "route", "status", "duration_ms",
    ]  # fmt: skip
    assert line["level"] == "INFO" and line["logger"] == "tests.logging.extra"
    assert line["message"] == "GET /x/{symbol} 200"
    assert (line["status"], line["duration_ms"]) == (200, 1.25)  # numbers stay numbers


def test_private_attributes_and_record_internals_are_not_fields() -> None:
    logger, out = _logger("private")
    logger.info("hi", extra={"_internal": 1, "kept": 2})
    (line,) = _lines(out)
    assert "_internal" not in line and line["kept"] == 2
    for internal in ("args", "msg", "pathname", "lineno", "thread", "process", "created"):
        assert internal not in line


def test_the_same_call_site_twice_gives_the_same_keys_and_new_values() -> None:
    # The formatter remembers which attributes are fields per record layout.
    logger, out = _logger("layout")
    logger.info("one", extra={"a": 1, "b": 2})
    logger.info("two", extra={"a": 3, "b": 4})
    logger.info("three", extra={"b": 5})
    first, second, third = _lines(out)
    assert (first["a"], first["b"], second["a"], second["b"]) == (1, 2, 3, 4)
    assert "a" not in third and third["b"] == 5


def test_a_traceback_is_rendered_as_exc_info_before_the_extra_fields() -> None:
    logger, out = _logger("exc")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("failed", extra={"job": "ingest"})
    (line,) = _lines(out)
    assert line["level"] == "ERROR" and line["message"] == "failed"
    exc = line["exc_info"]
    assert isinstance(exc, str)
    assert exc.startswith("Traceback (most recent call last):")
    assert exc.rstrip().endswith("ZeroDivisionError: division by zero")
    assert list(line)[5:] == ["exc_info", "job"]
    assert "stack_info" not in line


def test_stack_info_is_rendered_when_the_record_has_it() -> None:
    record = logging.LogRecord("tests.logging.stack", logging.INFO, "f.py", 1, "here", None, None)
    record.stack_info = 'Stack (most recent call last):\n  File "f.py", line 1, in <module>'
    line = json.loads(_formatter("json").format(record))
    assert line["stack_info"] == record.stack_info
    assert "exc_info" not in line


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_values_json_cannot_hold_become_text_and_never_lose_the_line() -> None:
    loop: list[object] = []
    loop.append(loop)
    logger, out = _logger("odd")
    odd = {
        "thing": object(),
        "tags": {"b"},
        "huge": 2**70,
        "by_number": {1: "one"},
        "by_tuple": {(1, 2): "pair"},
        "loop": loop,
        "unprintable": _Unprintable(),
        "fine": [1, "a", None],
    }
    logger.warning("odd values", extra=odd)
    (line,) = _lines(out)  # one line, valid JSON
    assert line["message"] == "odd values"
    assert isinstance(line["thing"], str) and line["thing"].startswith("<object object at ")
    assert line["tags"] == "{'b'}"
    assert line["huge"] == str(2**70)
    assert line["by_number"] == {"1": "one"}
    assert line["by_tuple"] == "{(1, 2): 'pair'}"
    assert line["loop"] == "[[...]]"
    assert line["unprintable"] == "<unprintable _Unprintable>"
    assert line["fine"] == [1, "a", None]  # the rest of the line is untouched


def test_a_dict_message_is_spread_into_the_line() -> None:
    logger, out = _logger("dict")
    logger.info({"event": "started", "workers": 2})
    (line,) = _lines(out)
    assert line["message"] == ""
    assert (line["event"], line["workers"]) == ("started", 2)


def test_request_id_is_the_current_requests_and_null_outside_one() -> None:
    logger, out = _logger("ids")
    logger.info("outside")
    token = request_id_var.set("req-7")
    try:
        logger.info("inside")
    finally:
        request_id_var.reset(token)
    logger.info("after")
    assert [line["request_id"] for line in _lines(out)] == [None, "req-7", None]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_time_is_loggings_default_asctime_across_second_boundaries(log_format: str) -> None:
    formatter = _formatter("json" if log_format == "json" else "text")
    plain = logging.Formatter()
    # Within one second, into the next, back to an earlier one: the cached text follows.
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0005, 1_699_999_000.25):
        record = logging.LogRecord("t", logging.INFO, "f.py", 1, "m", None, None)
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        expected = plain.formatTime(record)
        assert ASCTIME.match(expected)
        assert formatter.formatTime(record) == expected
    now = logging.LogRecord("t", logging.INFO, "f.py", 1, "m", None, None)
    now.request_id = None
    text = formatter.format(now)
    shown = json.loads(text)["time"] if log_format == "json" else text[:23]
    assert shown == plain.formatTime(now)


def test_an_explicit_date_format_is_still_honoured() -> None:
    record = logging.LogRecord("t", logging.INFO, "f.py", 1, "m", None, None)
    assert _formatter("json").formatTime(record, "%Y") == logging.Formatter().formatTime(
        record, "%Y"
    )


def test_the_text_format_shows_time_level_logger_id_and_message() -> None:
    logger, out = _logger("text", "text")
    token = request_id_var.set("req-9")
    try:
        logger.warning("disk %s", "full", extra={"not": "shown"})
    finally:
        request_id_var.reset(token)
    text = out.getvalue().rstrip("\n")
    assert ASCTIME.match(text[:23])
    assert text[23:] == " WARNING tests.logging.text [req-9]: disk full"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes the whole process's logging: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    flags = (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    access = logging.getLogger("uvicorn.access").disabled
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing) = flags
    logging.getLogger("uvicorn.access").disabled = access


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_configure_logging_skips_the_record_fields_no_format_prints(log_format: str) -> None:
    configure_logging("INFO", "json" if log_format == "json" else "text")
    assert logging._srcfile is None
    assert not (logging.logThreads or logging.logProcesses or logging.logMultiprocessing)
    if sys.version_info >= (3, 12):
        assert logging.logAsyncioTasks is False
    record = logging.getLogger("tests.logging.cheap").makeRecord(
        "tests.logging.cheap", logging.INFO, "(unknown file)", 0, "m", None, None
    )
    assert (record.thread, record.process, record.processName) == (None, None, None)
    (handler,) = logging.getLogger().handlers
    out = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    logging.getLogger("tests.logging.cheap").info("still logs", extra={"k": 1})
    written = out.getvalue()
    if log_format == "json":
        assert json.loads(written)["k"] == 1
    else:
        assert written.rstrip().endswith("INFO tests.logging.cheap [None]: still logs")


# ---------------------------------------------------------------- request ids


def test_made_up_request_ids_differ_and_are_ones_clients_could_send() -> None:
    ids = [_new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    for made in ids[:3] + ids[-3:]:
        assert REQUEST_ID.match(made) and len(made) == 32
    # One process's ids share a prefix; the count after it is what differs.
    assert {made[:16] for made in ids} == {ids[0][:16]}


def test_a_sane_client_id_is_kept_and_anything_else_replaced() -> None:
    def scope(value: bytes) -> dict[str, object]:
        return {"headers": [(b"host", b"x"), (b"x-request-id", value)]}

    assert _request_id(scope(b"trace-42.a:b_c")) == "trace-42.a:b_c"
    for bad in (b"", b"two words", b"x" * 129, b"caf\xe9", b"}\n{"):
        made = _request_id(scope(bad))
        assert made != bad.decode("latin-1") and REQUEST_ID.match(made) and len(made) == 32
    assert REQUEST_ID.match(_request_id({"headers": []}))


def test_resetting_gives_a_new_prefix_and_never_an_id_seen_before() -> None:
    before = [_new_request_id() for _ in range(3)]
    _reset_request_ids()
    after = [_new_request_id() for _ in range(3)]
    assert before[0][:16] != after[0][:16]
    assert not set(before) & set(after)


def test_a_forked_child_makes_ids_with_its_own_prefix() -> None:
    parent = _new_request_id()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # 3.12+ warns about forking a process that has threads; the child only makes an id.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report one id, exit without running pytest's teardown
        try:
            os.write(write_end, observability._new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        child = os.read(read_end, 64).decode()
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert REQUEST_ID.match(child) and len(child) == 32
    assert child[:16] != parent[:16]
    assert _new_request_id()[:16] == parent[:16]  # the parent's own prefix is unchanged
