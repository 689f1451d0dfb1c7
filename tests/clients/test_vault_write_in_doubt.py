"""A check-and-set refusal means "another writer" only when no earlier attempt of ours was lost in
flight: after a lost answer the refusal is a doubt that only reading the key back resolves."""

from __future__ import annotations

import pytest

from jobs.core.clients.vault import VaultClient
from jobs.core.errors import Conflict, WriteInDoubt
from jobs.core.retry import RetryPolicy
from jobs.core.settings import VaultSettings
from lab.openbao import OpenBao
from lab.vault_proxy import INTERNAL_ERROR, Action, Rule, VaultProxy

VALUE = {"value": "the-same-value-written-by-both-0001"}


def vault(addr: str, token: str) -> VaultClient:
    settings = VaultSettings.model_validate({"VAULT_ADDR": addr, "VAULT_TOKEN": token})
    return VaultClient(settings, retry=RetryPolicy(initial_wait=0.05), timeout=5)  # type: ignore[arg-type]


def test_a_refusal_on_the_first_attempt_is_another_writers_conflict(openbao: OpenBao, kv_mount: str) -> None:
    other = vault(openbao.addr, openbao.root_token)
    assert other.write(kv_mount, "shared", VALUE, cas=0) == 1
    ours = vault(openbao.addr, openbao.root_token)
    with pytest.raises(Conflict) as caught:
        ours.write(kv_mount, "shared", VALUE, cas=0)
    assert not isinstance(caught.value, WriteInDoubt)  # same value, yet not our write: re-plan


def test_a_refusal_after_a_lost_answer_is_in_doubt(openbao: OpenBao, kv_mount: str) -> None:
    with VaultProxy(openbao.addr) as proxy:
        proxy.add(Rule(Action.FORWARD_THEN_RESPOND, "POST", r"/data/landed$", INTERNAL_ERROR, count=1))
        ours = vault(proxy.addr, openbao.root_token)
        with pytest.raises(WriteInDoubt):
            ours.write(kv_mount, "landed", VALUE, cas=0)
    assert vault(openbao.addr, openbao.root_token).read(kv_mount, "landed").version == 1
