"""Reading a file people and pipelines hand us, before any YAML parsing (docs/design.md#the-catalog):
only regular files are opened (a FIFO, a device or a directory is refused before any read), at most
`MAX_BYTES` are read, and bytes that are not UTF-8 are named by their offset, never shown. The problem
types shared with `jobs.core.safe_yaml` live here too."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAX_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class YamlProblem:
    line: int
    message: str


class YamlInputError(Exception):
    """A file or text refused before or while parsing. Messages never quote the input."""

    def __init__(self, problems: Sequence[YamlProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"line {p.line}: {p.message}" for p in self.problems))


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _refuse_file(mode: int) -> YamlInputError:
    return YamlInputError([YamlProblem(1, f"not a regular file ({_kind(mode)}): refused without reading")])


def too_large(size: int | None) -> YamlInputError:
    actual = f" ({size} bytes)" if size is not None else ""
    return YamlInputError([YamlProblem(1, f"larger than {MAX_BYTES // (1024 * 1024)} MiB{actual}: refused")])


def read_bytes(path: Path) -> bytes:
    """At most MAX_BYTES of a regular file; FIFOs, devices and directories are refused unopened."""
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise _refuse_file(before.st_mode)
        if before.st_size > MAX_BYTES:
            raise too_large(before.st_size)
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, opening it cannot hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as stream:
            opened = os.fstat(stream.fileno())
            if not stat.S_ISREG(opened.st_mode):
                raise _refuse_file(opened.st_mode)
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlInputError([YamlProblem(1, f"cannot read: {exc.strerror or type(exc).__name__}")]) from None
    if len(data) > MAX_BYTES:
        raise too_large(None)
    return data


def decode(data: bytes) -> str:
    """UTF-8 text; otherwise an error naming the byte offset and line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlInputError(
            [
                YamlProblem(
                    line,
                    f"not UTF-8 text: invalid byte at byte offset {exc.start} (line {line}); "
                    "save the file as UTF-8",
                )
            ]
        ) from None


def read_text(path: Path) -> str:
    return decode(read_bytes(path))
