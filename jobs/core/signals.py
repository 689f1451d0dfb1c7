"""SIGTERM handling, installed first thing by each entrypoint, before any heavy import.

This module imports nothing but the standard library, so an entrypoint can install the handler in
its first lines: a SIGTERM during the imports that follow (hvac, azure, kubernetes) or after the
summary is printed only sets the run's interrupt flag, and never kills the process with signal 15
(exit 143). The run reads the flag between entries and in every wait (docs/design.md#exit-codes).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)
_interrupt = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if not _interrupt.is_set():
        log.warning("SIGTERM received: finishing the entries in flight, starting no new ones")
    _interrupt.set()


def install() -> threading.Event:
    """Route SIGTERM to the process-wide interrupt flag (only the main thread can install it);
    installing again keeps a SIGTERM that already arrived."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    return _interrupt


def interrupt() -> threading.Event:
    """The process-wide flag a SIGTERM sets."""
    return _interrupt


def reset() -> None:
    """Forget an earlier SIGTERM (for a process that runs several commands, e.g. tests)."""
    _interrupt.clear()
