from __future__ import annotations

import io
import json
import logging

import pytest

from jobs.core import logs
from jobs.core.logs import REDACTED, redact, register_secret, setup_logging


@pytest.fixture
def stream() -> io.StringIO:
    buffer = io.StringIO()
    setup_logging("json", stream=buffer)
    return buffer


def test_registered_value_never_reaches_a_log_line(stream: io.StringIO) -> None:
    register_secret("s3cr3t-value-one")
    logging.getLogger("jobs.test").info(
        "value is %s", "s3cr3t-value-one", extra={"field": "x s3cr3t-value-one"}
    )
    line = json.loads(stream.getvalue())
    assert "s3cr3t-value-one" not in stream.getvalue()
    assert line["message"] == f"value is {REDACTED}"
    assert line["field"] == f"x {REDACTED}"


def test_library_exception_text_is_redacted(stream: io.StringIO) -> None:
    register_secret('p@ss"word-with-quote')

    class LibraryError(Exception):
        pass

    try:
        raise LibraryError('bad request body {"secret": "p@ss\\"word-with-quote"}')
    except LibraryError:
        logging.getLogger("some.library").exception("request failed")
    assert "word-with-quote" not in stream.getvalue()
    assert REDACTED in json.loads(stream.getvalue())["error"]


def test_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    register_secret("abcd")
    register_secret("xxabcdyy-long")
    assert redact("v=xxabcdyy-long") == f"v={REDACTED}"


def test_text_format_is_redacted_too() -> None:
    buffer = io.StringIO()
    setup_logging("text", stream=buffer)
    register_secret("text-mode-secret")
    logging.getLogger("jobs.test").warning("got text-mode-secret", extra={"entry": "a"})
    assert "text-mode-secret" not in buffer.getvalue()
    assert "entry=a" in buffer.getvalue()


def test_noisy_library_loggers_are_quieted(stream: io.StringIO) -> None:
    logging.getLogger("httpx").info("HTTP Request: GET https://x")
    assert stream.getvalue() == ""
    assert logs.registered_count() >= 0
