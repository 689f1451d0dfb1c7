"""Every Key Vault request counted for the run's metrics (`jobs.core.traffic`), at the transport: a
pipeline policy placed after the SDK's retry and challenge-authentication policies, so the challenge's
unauthenticated first request counts too (docs/design.md#metrics-and-events)."""

from __future__ import annotations

from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from jobs.core import traffic
from jobs.core.clients.azure_errors import SYSTEM


class CountRequests(SansIOHTTPPolicy[Any, Any]):
    """Counts each attempt by its status class; one with no answer as `error`."""

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        traffic.record(SYSTEM, response.http_response.status_code)

    def on_exception(self, request: PipelineRequest[Any]) -> None:
        traffic.record(SYSTEM, None)
