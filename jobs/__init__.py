"""secret-origin jobs. The version has one source, pyproject.toml's `[project] version`, read from the
installed package's metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("secret-origin")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
