"""secret-origin jobs. The version has one source, pyproject.toml's `[project] version`, read from the
installed package's metadata — only when asked (`--version`), so a plain start stays instant."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("secret-origin")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"
