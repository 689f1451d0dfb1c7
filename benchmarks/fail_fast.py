"""Time to fail a 2,000-entry vault-bootstrap run when Vault is down, with the default request timeout
(10 s) and retry policy (5 attempts): targets < 10 s for a closed port, < 2 x (10 s x 5) = 100 s for a
silent Vault, whatever the number of entries.

    python -m benchmarks.fail_fast [--entries 2000]

Four scenarios, each through the real console script against OpenBao behind lab.vault_proxy:
closed port from the start; port closed at the first KV read (the pre-flight passed); a server that
accepts and never answers from the start; one that goes silent at the first KV read.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

from lab.openbao import free_port, start_openbao
from lab.vault_bootstrap_stack import BootstrapStack
from lab.vault_proxy import Action, Rule, VaultProxy


def run(stack: BootstrapStack, addr: str) -> tuple[float, int, Counter[str]]:
    started = time.monotonic()
    done = stack.run("--log-format", "json", env=stack.env(VAULT_ADDR=addr), timeout=600)
    elapsed = time.monotonic() - started
    reasons: Counter[str] = Counter()
    try:
        reasons.update(e["reason"] for e in json.loads(done.stdout)["entries"])
    except (ValueError, KeyError):
        reasons["(no summary) " + done.stderr[-200:]] += 1
    return elapsed, done.returncode, reasons


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    n = parser.parse_args().entries
    with tempfile.TemporaryDirectory() as tmp:
        bao = start_openbao(Path(tmp) / "openbao")
        try:
            with BootstrapStack.start(Path(tmp) / "stack", openbao=bao) as stack:
                secrets = [
                    {"name": f"fx-{i:04d}", "origin": "helm-generated", "fixture": "fixture-value"}
                    for i in range(n)
                ]
                stack.write_catalog(secrets)
                data = f"/v1/{stack.mount}/data/"
                results = []
                results.append(("closed port", *run(stack, f"http://127.0.0.1:{free_port()}")))
                with VaultProxy(bao.addr) as proxy:
                    proxy.add(Rule(Action.CLOSE, path=data))
                    results.append(("port closed at the first read", *run(stack, proxy.addr)))
                with socket.socket() as server:
                    server.bind(("127.0.0.1", 0))
                    server.listen(4096)
                    host, port = server.getsockname()
                    results.append(("silent from the start", *run(stack, f"http://{host}:{port}")))
                with VaultProxy(bao.addr) as proxy:
                    proxy.add(Rule(Action.HANG, path=data, hang_seconds=300))
                    results.append(("silent at the first read", *run(stack, proxy.addr)))
        finally:
            bao.stop()
    for name, elapsed, code, reasons in results:
        top = reasons.most_common(1)[0] if reasons else ("", 0)
        print(f"{name:32} {n} entries: {elapsed:6.1f} s, exit {code}; {top[1]} x {top[0]!r}")


if __name__ == "__main__":
    main()
