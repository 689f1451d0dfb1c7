"""Structured logging with a process-wide redaction filter.

Every secret value the process reads or writes is registered with `register_secret` before it could
reach a log line; every record (message, arguments, exception text, extra fields) passes through
`redact` on its way out, so even a library error that embeds a value prints `[REDACTED]`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, TextIO
from urllib.parse import quote, quote_plus

REDACTED: Final = "[REDACTED]"
# Values shorter than this are not masked: a one-character "secret" would turn every log line into
# confetti. Catalog fixtures must be at least this long; a shorter credential or value read from a
# server is too weak to be a secret anyway, and the jobs never log values on purpose.
_MIN_LENGTH: Final = 4

_lock = threading.Lock()
_secrets: set[str] = set()
# Longest first, so a secret containing another is masked whole. Rebound (never mutated) under the
# lock, so a thread redacting meanwhile reads one complete snapshot without taking the lock.
_ordered: tuple[str, ...] = ()
# The first and the last _MIN_LENGTH characters of every registered value: a text that contains none
# of the first, or none of the last, contains no secret, which most log lines prove in microseconds
# (they only grow, and are added before their value joins `_ordered`, so a reader never misses one).
_prefixes: set[str] = set()
_suffixes: set[str] = set()

_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}


def register_secret(value: str | None) -> None:
    """Mask `value` (and its common encodings) in every log line from now on (thread-safe)."""
    global _ordered  # noqa: PLW0603 - the process-wide registry, rebound atomically
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        variants = {
            value,
            value.strip(),  # a token file or Secret often ends in a newline
            json.dumps(value)[1:-1],
            repr(value)[1:-1],
            quote(value, safe=""),  # as echoed in a form body or a query string
            quote_plus(value),
        }
        variants = {v for v in variants if len(v) >= _MIN_LENGTH}
        new = variants - _secrets
        if new:
            _prefixes.update(v[:_MIN_LENGTH] for v in new)
            _suffixes.update(v[-_MIN_LENGTH:] for v in new)
            _secrets.update(new)
            _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def forget_registered_secrets() -> None:
    """Empty the registry. A job process never needs this (it registers for its whole life); test
    processes run many jobs' code in one interpreter and call it between tests."""
    global _ordered  # noqa: PLW0603 - the process-wide registry, rebound atomically
    with _lock:
        _secrets.clear()
        _ordered = ()
        _prefixes.clear()
        _suffixes.clear()


def registered_count() -> int:
    return len(_secrets)


def redact(text: str) -> str:
    ordered = _ordered  # one snapshot: a concurrent register_secret rebinds, never mutates
    if not ordered or _cannot_hold_any(text):
        return text
    for value in ordered:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _cannot_hold_any(text: str) -> bool:
    """True when no registered value can occur in `text`: a value that occurs brings its first and its
    last _MIN_LENGTH characters with it."""
    grams = {text[i : i + _MIN_LENGTH] for i in range(len(text) - _MIN_LENGTH + 1)}
    return grams.isdisjoint(_prefixes) or grams.isdisjoint(_suffixes)


def _redact_any(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_any(v) for v in value]
    return value


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(_extras(record))
        if record.exc_info and record.exc_info[1] is not None:
            payload["error"] = "".join(traceback.format_exception_only(record.exc_info[1])).strip()
        return redact(json.dumps(_redact_any(payload), default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}" + (f"  {fields}" if fields else "")
        if record.exc_info and record.exc_info[1] is not None:
            line += "  error=" + "".join(traceback.format_exception_only(record.exc_info[1])).strip()
        return redact(line)


_QUIET_LIBRARIES: Final = ("httpx", "httpcore", "urllib3", "azure", "kubernetes", "hvac", "msal")


def setup_logging(fmt: str, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Configure the root logger once per process; `fmt` is 'json' or 'text'."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)
