"""What both the jobs and the offline checks rely on in External Secrets Operator's API: its group and
how it reads an ExternalSecret's `refreshInterval`. Defined once so the live client and the manifest
rules cannot drift apart."""

from __future__ import annotations

import re
from typing import Final

ESO_GROUP: Final = "external-secrets.io"
_ZERO_DURATION: Final = re.compile(r"^(0+(\.0+)?(ns|us|µs|ms|s|m|h)?)+$")


def is_zero_duration(value: str | None) -> bool:
    """Go's time.ParseDuration zero: "0", "0s", "0m0s", "0h0m0s" ... (ESO's refreshInterval)."""
    return value is not None and bool(_ZERO_DURATION.fullmatch(value.strip()))
