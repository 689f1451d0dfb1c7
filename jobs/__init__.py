"""secret-origin jobs. The version has one source, pyproject.toml's `[project] version`, read from the
installed package's metadata — only when asked (`--version`), so a plain start stays instant."""

from __future__ import annotations

import os
import sys

_DIST = "secret_origin"


def _from_dist_info() -> str | None:
    """The `Version:` of the first secret_origin-*.dist-info on sys.path (what importlib.metadata finds
    first), read without importlib.metadata, whose import alone costs more than the rest of `--version`."""
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if not (name.startswith(f"{_DIST}-") and name.endswith(".dist-info")):
                continue
            try:
                with open(os.path.join(entry or ".", name, "METADATA"), encoding="utf-8") as metadata:
                    for line in metadata:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
                        if not line.strip():
                            break  # the headers end at the first blank line
            except OSError:
                continue
    return None


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(name)
    found = _from_dist_info()
    if found:
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("secret-origin")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"
