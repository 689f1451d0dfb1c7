"""What both the jobs and the offline checks rely on in External Secrets Operator's API: its group, how
it reads an ExternalSecret's `refreshInterval`, and when it ignores the force-sync annotation
(docs/design.md#external-secrets-operator). Defined once so the live job and the manifest rules cannot
drift apart."""

from __future__ import annotations

import re
from typing import Final

ESO_GROUP: Final = "external-secrets.io"
_ZERO_DURATION: Final = re.compile(r"^(0+(\.0+)?(ns|us|µs|ms|s|m|h)?)+$")


def is_zero_duration(value: str | None) -> bool:
    """Go's time.ParseDuration zero: "0", "0s", "0m0s", "0h0m0s" ... (ESO's refreshInterval)."""
    return value is not None and bool(_ZERO_DURATION.fullmatch(value.strip()))


def why_force_sync_ignored(refresh_policy: str | None, refresh_interval: str | None) -> str | None:
    """Why ESO will never act on a force-sync annotation of this ExternalSecret, or None when it will
    (docs/design.md#traps, trap 9). ESO's defaults: policy Periodic, interval 1h."""
    policy = (refresh_policy or "Periodic").strip()
    if policy == "CreatedOnce":
        return "refreshPolicy CreatedOnce"
    if policy == "Periodic" and is_zero_duration(refresh_interval):
        return f"refreshInterval {refresh_interval!r} with the Periodic policy"
    return None
