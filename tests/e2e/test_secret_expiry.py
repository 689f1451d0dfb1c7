"""Under Keycloak's secret-rotation client policy the current client secret expires
(`client.secret.expiration.time`); from then on Keycloak refuses it at every login. client-patcher
warns a week ahead, fails the entry once it has expired (without updating the client, which would make
Keycloak regenerate it outside any runId), and a runId bump rotates it (docs/design.md#keycloak)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab.client_patcher_stack import ClientPatcherStack, ClientSpec, assert_no_secret_in
from lab.openbao import OpenBao
from tests.support.pushgateway import samples_of
from tests.support.summary import read_summary

APP = ClientSpec("app-client-secret", "ameide", "app", (("apps", "app-sync"),))
EXPIRES = "client.secret.expiration.time"
EXPIRY_METRIC = "secret_origin_secret_expiry_timestamp_seconds"


def run(stack: ClientPatcherStack, *args: str) -> tuple[int, list[dict[str, Any]]]:
    done = stack.run(*args, timeout=120)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done.returncode, read_summary(done.stdout)["entries"]


def test_a_week_ahead_a_warning_once_expired_a_failure_and_a_runid_bump_rotates(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients=[APP]) as stack:
        code, listed = run(stack)
        assert code == 0 and [e["action"] for e in listed] == ["written"]
        written = stack.vault_state(APP.name)

        expires = int(time.time()) + 2 * 86400
        stack.keycloak.set_client_attributes("ameide", "app", {EXPIRES: str(expires)})
        metrics = tmp_path / "client-patcher.prom"
        code, listed = run(stack, "--metrics-file", str(metrics))  # unchanged, but listed
        assert code == 0 and [e["action"] for e in listed] == ["unchanged"], listed
        (warning,) = listed[0]["warnings"]
        assert "the client secret of ameide/app expires at" in warning and "(in 1d23h" in warning
        labels = (("entry", APP.name), ("job_name", "client-patcher"))
        assert samples_of(metrics.read_text())[(EXPIRY_METRIC, labels)] == expires  # what alerts watch

        stack.keycloak.set_client_attributes("ameide", "app", {EXPIRES: str(int(time.time()) - 60)})
        code, listed = run(stack)
        assert code == 1 and [e["action"] for e in listed] == ["failed"], listed
        reason = listed[0]["reason"]
        assert "the client secret of ameide/app expired at" in reason
        assert "Keycloak refuses it at every login" in reason and "bump keycloak.rotate.runId" in reason
        assert stack.vault_state(APP.name) == written  # still what Keycloak holds; nothing rotated
        assert stack.keycloak.regenerations("ameide", "app") == 0

        stack.write_catalog([replace(APP, rotate_run_id="after-expiry")])
        code, listed = run(stack)
        assert code == 0 and listed[0]["action"] == "written" and "rotated" in listed[0]["reason"], listed
        assert stack.keycloak.regenerations("ameide", "app") == 1
        assert stack.vault_state(APP.name)[1] == stack.keycloak_secret(APP)
        code, listed = run(stack)  # the new secret carries no expiry (no policy here): quiet again
        assert (code, listed) == (0, [])
