"""Every Key Vault request counted for the run's metrics (`jobs.core.traffic`), at the transport: below
every pipeline policy, so the unauthenticated first request of the challenge-authentication policy
counts too, and each attempt once (docs/design.md#metrics-and-events). (A pipeline policy would sit
above the challenge policy: azure-core puts `per_retry_policies` right after the retry policy.)"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import RequestsTransport

from jobs.core import traffic
from jobs.core.clients.azure_errors import SYSTEM


class CountingTransport(RequestsTransport):  # type: ignore[misc]
    """azure-core's requests transport, counting each request by its status class (no answer: error)."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        send = super().send
        return traffic.counted(SYSTEM, lambda: send(request, **kwargs))
