"""Zero-downtime rotation on the emulators (the same flow tests/real/test_rotation_real.py proves on the
real Keycloak): the grace window closes once every consumer converged, stays open while one does not,
and a grace rotation without the secret-rotation policy is refused unless the catalog accepts a hard cut."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from lab.client_patcher_stack import BIN, ClientPatcherStack, ClientSpec, assert_no_secret_in
from lab.openbao import OpenBao
from tests.support.summary import read_summary

APP = ClientSpec(
    "app-client-secret", "ameide", "app", (("apps", "app-sync"),), rotate_run_id="r1", rotate_grace="15m"
)
TWO = ClientSpec(**{**APP.__dict__, "consumers": (("apps", "app-sync"), ("apps", "app-other"))})


def start(openbao: OpenBao, kv_mount: str, tmp_path: Path, spec: ClientSpec = APP) -> ClientPatcherStack:
    return ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients=[spec])


def run(stack: ClientPatcherStack) -> tuple[int, dict[str, Any]]:
    done = stack.run("--summary", "full", timeout=120)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done.returncode, read_summary(done.stdout)["entries"][0]


def checks(stack: ClientPatcherStack) -> tuple[str, str]:
    """(audit's note, smoke's reason) for the entry: where an open window shows."""
    found = []
    for args in (("audit", "--format", "json"), ("smoke", "--log-format", "json", "--summary", "full")):
        done = subprocess.run(
            [str(BIN / "secret-origin"), args[0], "--catalog", str(stack.catalog_path), *args[1:]],
            env=stack.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
        if args[0] == "audit":
            found.append(json.loads(done.stdout)["rows"][0]["note"])
        else:
            found.append(read_summary(done.stdout)["entries"][0]["reason"])
    return found[0], found[1]


def test_the_window_closes_once_consumers_converged_and_stays_open_while_one_does_not(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with start(openbao, kv_mount, tmp_path, TWO) as stack:
        stack.keycloak.set_rotation_policy("ameide", "app", True)
        consumer = stack.kube.get_object("ExternalSecret", "apps", "app-sync")
        assert consumer is not None
        stack.kube.delete_object("ExternalSecret", "apps", "app-sync")
        code, entry = run(stack)
        assert code == 1 and "window left open (not converged: apps/app-sync)" in entry["reason"]
        assert stack.keycloak.rotated_secret("ameide", "app") is not None
        assert stack.keycloak.regenerations("ameide", "app") == 1
        assert all("rotation in progress: the previous secret also logs in" in text for text in checks(stack))
        converged_first = stack.consumer("apps", "app-other")[1]["force-sync"]
        stack.kube.put_object(consumer)
        code, entry = run(stack)
        assert code == 0 and "rotation window closed" in entry["reason"], entry
        # the resumed window annotates (and checks) every consumer again, not only the one behind
        again = stack.consumer("apps", "app-other")[1]["force-sync"]
        assert again != converged_first and again.startswith(converged_first + "-r")
        assert stack.keycloak.rotated_secret("ameide", "app") is None
        assert stack.keycloak.regenerations("ameide", "app") == 1
        assert stack.vault_state(APP.name)[1] == stack.keycloak_secret(APP)
        assert not any("rotation" in text for text in checks(stack))


def test_without_the_policy_grace_is_refused_and_hard_cut_is_an_explicit_choice(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        before = stack.keycloak_secret(APP)
        code, entry = run(stack)
        assert code == 1 and "rotation refused (grace 15m)" in entry["reason"]
        assert (stack.keycloak_secret(APP), stack.keycloak.regenerations("ameide", "app")) == (before, 0)
        stack.write_catalog([ClientSpec(**{**APP.__dict__, "hard_cut": True})])
        code, entry = run(stack)
        assert code == 0 and "hard cut accepted" in " ".join(entry.get("warnings", [])) + entry["reason"], (
            entry
        )
        assert stack.keycloak.regenerations("ameide", "app") == 1
        assert stack.keycloak.rotated_secret("ameide", "app") is None


def test_a_policy_that_keeps_nothing_is_a_hard_cut_reported_after_the_new_secret_is_out(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        stack.keycloak.set_rotation_policy("ameide", "app", True, rotated_expiration=0)
        code, entry = run(stack)
        assert code == 1 and "HARD CUT: Keycloak kept no rotated secret" in entry["reason"]
        assert stack.keycloak.regenerations("ameide", "app") == 1
        assert stack.vault_state(APP.name)[1] == stack.keycloak_secret(APP)  # written all the same
        assert stack.consumer("apps", "app-sync")[1]["force-sync"] == stack.force_sync_of(APP.name)
        code, entry = run(stack)  # the rerun does not rotate again
        assert code == 0 and stack.keycloak.regenerations("ameide", "app") == 1


def dry_run(stack: ClientPatcherStack, *, admin: bool = False) -> tuple[int, dict[str, Any]]:
    """A dry run as the service account (manage-clients, no view-realm) or as the realm admin, who may
    read the realm's client policies."""
    env = stack.env(service_account=not admin, admin=admin)
    done = stack.run("--dry-run", "--summary", "full", env=env, timeout=120)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done.returncode, read_summary(done.stdout)["entries"][0]


def test_a_dry_run_tells_whether_a_grace_rotation_would_be_refused_and_changes_nothing(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        before = stack.keycloak.client_attributes("ameide", "app")
        code, entry = dry_run(stack, admin=True)  # no secret-rotation policy in the realm: certain
        assert code == 1 and entry["action"] == "failed", entry
        assert entry["reason"].startswith("DRY-RUN: ") and "rotation refused (grace 15m)" in entry["reason"]
        code, entry = dry_run(stack)  # the service account cannot read the policies: not certain
        assert code == 0 and "only if a secret-rotation policy applies" in entry["reason"], entry
        assert "cannot read the realm's client policies" in " ".join(entry["warnings"])

        # a policy the client has not been updated under yet: the real run's update decides
        stack.keycloak.set_rotation_policy("ameide", "app", True)
        code, entry = dry_run(stack, admin=True)
        assert code == 0 and "only if a secret-rotation policy applies" in entry["reason"], entry
        assert "the run checks again after updating the client" in " ".join(entry["warnings"])

        # the policy applied at the client's last update: a plain preview
        stack.keycloak.set_client_attributes("ameide", "app", {"client.secret.expiration.time": "1"})
        code, entry = dry_run(stack, admin=True)
        assert code == 0 and "grace 15m: Keycloak keeps the old secret" in entry["reason"], entry
        assert not entry.get("warnings")

        assert stack.keycloak.regenerations("ameide", "app") == 0
        after = stack.keycloak.client_attributes("ameide", "app")
        assert {k: v for k, v in after.items() if k != "client.secret.expiration.time"} == before
        assert stack.vault_state(APP.name)[0] == 0  # nothing written
