"""How Vault's answers are classified: a 503 is transient unless Vault itself says it is sealed, and a
mount that requires `metadata_cas` is never mistaken for a lost check-and-set race."""

from __future__ import annotations

import hvac.exceptions
import pytest

from jobs.core.clients.vault_errors import MetadataCasRequired, translate
from jobs.core.errors import ClientError, Conflict, Permanent, Sealed, Transient


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (hvac.exceptions.VaultDown(errors=["Vault is sealed"]), Sealed),
        (hvac.exceptions.VaultDown(errors=["service unavailable"]), Transient),  # ingress / standby
        (hvac.exceptions.VaultDown(errors=[]), Transient),
        (hvac.exceptions.InvalidRequest(errors=["metadata check-and-set parameter required"]), Permanent),
        (
            hvac.exceptions.InvalidRequest(
                errors=["metadata check-and-set parameter does not match the current version"]
            ),
            Conflict,
        ),
        (
            hvac.exceptions.InvalidRequest(
                errors=["check-and-set parameter did not match the current version"]
            ),
            Conflict,
        ),
    ],
)
def test_vault_answers_are_classified_by_what_vault_said(exc: Exception, kind: type[ClientError]) -> None:
    error = translate(exc, "write", "kv/data/k")
    assert type(error) is kind or (kind is Permanent and isinstance(error, MetadataCasRequired))


def test_a_503_carries_the_retry_after_it_was_answered_with() -> None:
    error = translate(
        hvac.exceptions.VaultDown(errors=["service unavailable"]), "read", "kv/data/k", retry_after=3.0
    )
    assert isinstance(error, Transient) and error.retry_after == 3.0


def test_metadata_cas_required_is_reported_as_what_it_is() -> None:
    exc = hvac.exceptions.InvalidRequest(errors=["metadata check-and-set parameter required for this call"])
    error = translate(exc, "write-metadata", "kv/metadata/k")
    assert not isinstance(error, Conflict)
    assert "requires metadata_cas" in str(error)
