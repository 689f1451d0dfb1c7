"""The credentials in the environment, moved out of it first thing (docs/design.md#settings-and-credentials).

Built from the standard library alone: the runner calls `protect_environment` before anything else,
and an exit-2 path must not pay for the settings library. `jobs.core.settings` reads the held values
when it builds its settings classes.
"""

from __future__ import annotations

import os
from typing import Final

from jobs.core.logs import register_secret

# Environment variables that hold a credential: ours, Azure's, and any name the chart's convention marks
# as one (a name ending in SECRET, PASSWORD, TOKEN or _KEY must come from a Secret).
CREDENTIAL_SUFFIXES: Final = ("SECRET", "PASSWORD", "TOKEN", "_KEY")
held: Final[dict[str, str]] = {}


def is_credential_variable(name: str) -> bool:
    return name.upper().endswith(CREDENTIAL_SUFFIXES) or name.upper().startswith("AZURE_CLIENT_CERTIFICATE")


def protect_environment() -> None:
    """First thing a job does, before it reads any file or builds any client: every credential in the
    environment is registered for redaction, then moved out of `os.environ` into this module, where only
    the settings classes read it. Child processes (kubeconfig exec plugins, a library's `uname -p`)
    inherit `os.environ`, so they never see our credentials (docs/design.md#settings-and-credentials)."""
    for name in [n for n in os.environ if is_credential_variable(n)]:
        value = os.environ.pop(name)
        register_secret(value)
        if value:
            held[name] = value


def forget_held_credentials() -> None:
    """For test processes, which run many jobs' code in one interpreter (a job never needs it)."""
    held.clear()
