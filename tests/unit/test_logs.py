from __future__ import annotations

import io
import json
import logging
import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_text_log_lines_start_with_a_utc_timestamp() -> None:
    buffer = io.StringIO()
    setup_logging("text", stream=buffer)
    logging.getLogger("jobs.test").info("entry written", extra={"entry": "ghcr-token"})
    line = buffer.getvalue().strip()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 INFO +entry written  entry=ghcr-token", line
    )


def test_registering_while_other_threads_redact_never_lets_a_value_through() -> None:
    """The registry is rebound, never mutated: a redacting thread always sees a complete snapshot."""
    logs.forget_registered_secrets()
    values = [f"Zq9-thread-secret-{n:04d}" for n in range(400)]
    register_secret(values[0])
    leaked: list[str] = []
    done = threading.Event()

    def redact_forever() -> None:
        while not done.is_set():
            text = redact(values[0])
            if values[0] in text:
                leaked.append(text)

    readers = [threading.Thread(target=redact_forever) for _ in range(3)]
    for reader in readers:
        reader.start()
    for value in values[1:]:
        register_secret(value)
    done.set()
    for reader in readers:
        reader.join()
    assert leaked == []
    assert all(redact(v) == REDACTED for v in values)


def _reference_redact(text: str, values: list[str]) -> str:
    """The plain rule: every registered variant, longest first, replaced wherever it occurs."""
    for value in sorted(logs._secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


@given(
    values=st.lists(st.text("ab[]EDRCT-x\\\"'é", min_size=1, max_size=8), min_size=1, max_size=6),
    text=st.text("ab[]EDRCT-x\\\"'é ", max_size=60),
)
@settings(max_examples=300, deadline=None)
def test_the_fast_path_masks_exactly_what_the_plain_rule_masks(values: list[str], text: str) -> None:
    """Most lines hold no secret and skip the full scan; the result is the same as scanning."""
    logs.forget_registered_secrets()
    try:
        for value in values:
            register_secret(value)
        for sample in (text, text + values[0], values[-1] + text + values[0]):
            assert redact(sample) == _reference_redact(sample, values)
    finally:
        logs.forget_registered_secrets()
