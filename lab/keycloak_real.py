"""The real Keycloak server (the `keycloak-quarkus-dist` distribution from Maven Central) for the real tier.

`start_keycloak()` fetches the pinned distribution with Maven (lab/maven.py: verified against Maven
Central's sha1, unpacked once into `.cache/real-servers/`), wipes the dev-file database, and runs
`kc.sh start-dev` on free loopback ports with a small heap on a Java >= 21, the bootstrap admin coming
from `KC_BOOTSTRAP_ADMIN_USERNAME` / `KC_BOOTSTRAP_ADMIN_PASSWORD`. It returns once `/health/ready` on the
management port answers UP, with the boot time measured.

`WORLD` describes what the tests need in Keycloak (two realms, confidential, public, bearer-only and
client-jwt clients, name decoys, and service accounts with different rights); `provision()` creates it on
a real server through the Admin REST API, `provision_emulator()` on the project's emulator, so the
contract tests (tests/contract/) ask both the same questions about the same world.

Runnable on its own: `python -m lab.keycloak_real` starts, provisions, prints the URL and waits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lab.maven import Artifact, cache_dir, fetch, find_java, mvn_binary, unpack

KEYCLOAK_VERSION = os.environ.get("SECRET_ORIGIN_KEYCLOAK_VERSION", "26.7.3")  # newest 26.x served
DIST = Artifact("org.keycloak", "keycloak-quarkus-dist", KEYCLOAK_VERSION, "tar.gz")
JAVA_MIN = 21  # Keycloak 26 runs on Java 21+
# A small footprint for a 2-core machine: capped heap, serial GC, C1 only (faster boot, less CPU).
JAVA_OPTS = (
    "-Xms64m -Xmx512m -XX:MaxMetaspaceSize=256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
    "-XX:+ExitOnOutOfMemoryError -Dfile.encoding=UTF-8 -Djava.security.egd=file:/dev/urandom"
)
BOOT_TIMEOUT = 300.0
MASTER = "master"


def requirements() -> list[str]:
    """What is missing to run the real Keycloak (empty when everything is there)."""
    from lab.maven import ToolMissing

    missing = []
    for probe in (mvn_binary, lambda: find_java(JAVA_MIN)):
        try:
            probe()
        except ToolMissing as exc:
            missing.append(str(exc))
    return missing


def keycloak_home() -> Path:
    """The unpacked distribution (fetched and unpacked on first use, reused afterwards)."""
    return unpack(fetch(DIST), f"keycloak-{KEYCLOAK_VERSION}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RealKeycloak:
    url: str
    management_url: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    boot_seconds: float
    admin_username: str
    admin_password: str = field(repr=False)

    def admin_api(self) -> AdminApi:
        return AdminApi(self.url, self.admin_username, self.admin_password)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_keycloak(workdir: Path, env: Mapping[str, str] | None = None) -> RealKeycloak:
    """Start `kc.sh start-dev` with a fresh dev-file database; the bootstrap admin comes from
    KC_BOOTSTRAP_ADMIN_USERNAME / KC_BOOTSTRAP_ADMIN_PASSWORD in `env` (default: os.environ)."""
    env = dict(os.environ if env is None else env)
    username = env.get("KC_BOOTSTRAP_ADMIN_USERNAME")
    password = env.get("KC_BOOTSTRAP_ADMIN_PASSWORD")
    if not username or not password:
        raise ValueError("KC_BOOTSTRAP_ADMIN_USERNAME and KC_BOOTSTRAP_ADMIN_PASSWORD must be set")
    java = find_java(JAVA_MIN)
    started = time.monotonic()
    home = keycloak_home()
    data = workdir / "keycloak-data"
    data.mkdir(parents=True, exist_ok=True)
    port, management = free_port(), free_port()
    env.update(
        {
            "JAVA_HOME": str(java),
            "JAVA_OPTS": JAVA_OPTS,
            "KC_BOOTSTRAP_ADMIN_USERNAME": username,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": password,
            # The dev-file database of this run only: every session starts from an empty server.
            "KC_DB_URL": f"jdbc:h2:file:{data}/keycloakdb;NON_KEYWORDS=VALUE;AUTO_SERVER=TRUE",
        }
    )
    log_path = workdir / "keycloak.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(home / "bin" / "kc.sh"),
                "start-dev",
                "--http-host=127.0.0.1",
                f"--http-port={port}",
                f"--http-management-port={management}",
                "--health-enabled=true",
                "--cache=local",
                "--log-level=warn",
                # Keycloak keeps the previous secret valid after a regenerate only with this preview
                # feature and a `secret-rotation` client policy (docs/design.md#keycloak).
                "--features=client-secret-rotation",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    keycloak = RealKeycloak(
        url=f"http://127.0.0.1:{port}",
        management_url=f"http://127.0.0.1:{management}",
        home=home,
        process=process,
        log_path=log_path,
        boot_seconds=0.0,
        admin_username=username,
        admin_password=password,
    )
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"Keycloak exited during boot (exit {process.returncode}):\n{keycloak.log_tail()}"
            )
        try:
            ready = httpx.get(f"{keycloak.management_url}/health/ready", timeout=2)
            if ready.status_code == 200 and ready.json().get("status") == "UP":
                keycloak.boot_seconds = time.monotonic() - started
                return keycloak
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    keycloak.stop()
    raise RuntimeError(f"Keycloak was not ready within {BOOT_TIMEOUT:.0f} s:\n{keycloak.log_tail()}")


@contextmanager
def running_keycloak(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[RealKeycloak]:
    keycloak = start_keycloak(workdir, env)
    try:
        yield keycloak
    finally:
        keycloak.stop()


# -- Admin REST API -------------------------------------------------------------------------------------
class AdminApi:
    """The master admin (password grant with `admin-cli`) on the Admin REST API; re-logs in before the
    master realm's 60 s tokens expire."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url
        self._username = username
        self._password = password
        self._token = ""
        self._renew_at = 0.0
        self.http = httpx.Client(base_url=url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def _bearer(self) -> dict[str, str]:
        if time.monotonic() >= self._renew_at:
            reply = self.http.post(
                f"/realms/{MASTER}/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self._username,
                    "password": self._password,
                },
            )
            reply.raise_for_status()
            body = reply.json()
            self._token = body["access_token"]
            self._renew_at = time.monotonic() + max(1.0, float(body["expires_in"]) - 15)
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"/admin/realms{path}", headers=self._bearer(), **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = self.request(method, path, **kwargs)
        if reply.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {reply.status_code} {reply.text[:300]}")
        return reply.json() if reply.content else None

    def client_uuid(self, realm: str, client_id: str) -> str:
        found = self.ok("GET", f"/{realm}/clients", params={"clientId": client_id})
        if not found:
            raise LookupError(f"no client {client_id!r} in realm {realm!r}")
        return str(found[0]["id"])

    def client_secret(self, realm: str, client_id: str) -> str | None:
        body = self.ok("GET", f"/{realm}/clients/{self.client_uuid(realm, client_id)}/client-secret")
        value = body.get("value")
        return str(value) if value is not None else None

    def set_secret(self, realm: str, client_id: str, value: str) -> None:
        cid = self.client_uuid(realm, client_id)
        rep = self.ok("GET", f"/{realm}/clients/{cid}")
        rep["secret"] = value
        self.ok("PUT", f"/{realm}/clients/{cid}", json=rep)

    def regenerate_secret(self, realm: str, client_id: str) -> str:
        body = self.ok("POST", f"/{realm}/clients/{self.client_uuid(realm, client_id)}/client-secret")
        return str(body["value"])

    def set_access_token_lifespan(self, realm: str, seconds: int) -> None:
        self.ok("PUT", f"/{realm}", json={"realm": realm, "accessTokenLifespan": seconds})

    def grant_client_roles(self, realm: str, service_client: str, roles: Mapping[str, Sequence[str]]) -> None:
        """Map client roles (`{role-client: [role, ...]}`) to the service account of `service_client`."""
        user = self.ok(
            "GET", f"/{realm}/clients/{self.client_uuid(realm, service_client)}/service-account-user"
        )
        for role_client, names in roles.items():
            rcid = self.client_uuid(realm, role_client)
            reps = [self.ok("GET", f"/{realm}/clients/{rcid}/roles/{name}") for name in names]
            self.ok("POST", f"/{realm}/users/{user['id']}/role-mappings/clients/{rcid}", json=reps)


# -- the world the real tier needs ----------------------------------------------------------------------
LAB_SECRET_EXPIRATION = 31536000  # one year: a secret under the lab's policies never expires in a test


@dataclass(frozen=True)
class ClientDef:
    realm: str
    client_id: str
    kind: str = "confidential"  # confidential | public | bearer-only | client-jwt
    secret: str | None = field(default=None, repr=False)  # None: Keycloak generates one
    service_account_roles: Mapping[str, tuple[str, ...]] | None = None  # None: no service account
    # Under a `secret-rotation` client policy keeping the old secret this long (seconds); None: none.
    rotated_period: int | None = None
    # That policy's expiration-period (seconds): how long a secret lives before it is refused.
    secret_expiration: int = LAB_SECRET_EXPIRATION

    def representation(self) -> dict[str, Any]:
        rep: dict[str, Any] = {
            "clientId": self.client_id,
            "enabled": True,
            "publicClient": self.kind == "public",
            "bearerOnly": self.kind == "bearer-only",
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": self.service_account_roles is not None,
        }
        if self.kind == "client-jwt":
            rep["clientAuthenticatorType"] = "client-jwt"
        if self.secret is not None:
            rep["secret"] = self.secret
        if self.policy_key is not None:  # what the realm's policy condition matches
            rep["attributes"] = {POLICY_ATTRIBUTE: self.policy_key}
        return rep

    @property
    def policy_key(self) -> str | None:
        """`<expiration-period>-<rotated-expiration-period>`: the policy this client falls under."""
        if self.rotated_period is None:
            return None
        return f"{self.secret_expiration}-{self.rotated_period}"


# The client attribute a `client-attributes` policy condition matches: one policy (and profile) per
# (expiration-period, rotated-expiration-period) pair, applying only to the clients that carry it.
POLICY_ATTRIBUTE = "secret-origin-lab.rotation-policy"


def rotation_policies(clients: Sequence[ClientDef]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(profiles, policies) bodies for `PUT .../client-policies/profiles|policies` of one realm:
    a `secret-rotation` executor per distinct pair of periods, each behind a condition on
    POLICY_ATTRIBUTE. Keycloak refuses (400) a configuration whose rotated-expiration-period or
    remaining-rotation-period exceeds its expiration-period [ClientSecretRotationExecutor
    .Configuration.validateConfig]: the remaining period is capped at the expiration-period."""
    pairs = sorted({(c.secret_expiration, c.rotated_period) for c in clients if c.rotated_period is not None})
    profiles, policies = [], []
    for expiration, period in pairs:
        key = f"{expiration}-{period}"
        name = f"secret-rotation-{key}"
        config = {
            "expiration-period": expiration,
            "rotated-expiration-period": period,
            "remaining-rotation-period": min(864000, expiration),
        }
        profiles.append(
            {"name": name, "executors": [{"executor": "secret-rotation", "configuration": config}]}
        )
        match = json.dumps([{"key": POLICY_ATTRIBUTE, "value": key}])
        condition = {"condition": "client-attributes", "configuration": {"attributes": match}}
        policies.append({"name": name, "enabled": True, "conditions": [condition], "profiles": [name]})
    return {"profiles": profiles}, {"policies": policies}


CLIENT_ROLES = ("query-clients", "view-clients", "manage-clients")


def _secret() -> str:
    return "sa-" + uuid.uuid4().hex


@dataclass(frozen=True)
class World:
    realms: tuple[str, ...]
    clients: tuple[ClientDef, ...]

    def client(self, realm: str, client_id: str) -> ClientDef:
        found = next((c for c in self.clients if (c.realm, c.client_id) == (realm, client_id)), None)
        if found is None:
            raise LookupError(f"no client {client_id!r} in realm {realm!r} of this world")
        return found


ROTATED_PERIOD = 3600  # seconds the lab's secret-rotation policy keeps an old secret
# `expiring-*`: a policy whose secrets expire after a few seconds and whose rotation keeps the expired
# secret as the rotated one as long (tests/contract/test_expiry_contract.py,
# tests/real/test_rotation_real.py).
EXPIRING_PERIOD = 5
ROLLING = ("rolling-contract", "rolling-close", "rolling-stuck", "rolling-killed", "rolling-off")


def build_world() -> World:
    """Two realms with the clients client-patcher manages, name decoys, a public, a bearer-only and a
    client-jwt client, and service accounts: `client-patcher` (master, the three client roles on each
    `<realm>-realm` client), `ameide-patcher` (realm-local, on `realm-management`), `viewer`
    (master, view-clients only), `querier` (master, query-clients only) and `nobody` (no roles)."""
    realms = ("ameide", "partners")
    everywhere = {f"{realm}-realm": CLIENT_ROLES for realm in realms}
    clients = (
        ClientDef("ameide", "platform-app-master"),
        ClientDef("ameide", "www"),
        ClientDef("ameide", "platform-app-master-v2"),
        ClientDef("ameide", "platform-app"),
        ClientDef("ameide", "www-admin"),
        ClientDef("ameide", "spa", "public"),
        ClientDef(
            "ameide",
            "ameide-patcher",
            secret=_secret(),
            service_account_roles={"realm-management": CLIENT_ROLES},
        ),
        ClientDef("partners", "partner-portal"),
        ClientDef("partners", "partner-api"),
        ClientDef("partners", "api", "bearer-only"),
        ClientDef("partners", "jwt-app", "client-jwt"),
        ClientDef(MASTER, "client-patcher", secret=_secret(), service_account_roles=everywhere),
        ClientDef(
            MASTER,
            "viewer",
            secret=_secret(),
            service_account_roles={f"{realm}-realm": ("view-clients",) for realm in realms},
        ),
        ClientDef(
            MASTER, "querier", secret=_secret(), service_account_roles={"ameide-realm": ("query-clients",)}
        ),
        ClientDef(MASTER, "nobody", secret=_secret(), service_account_roles={}),
        # Under a secret-rotation client policy (zero-downtime rotation): one client per test that
        # rotates, since the session's server keeps every rotation.
        *(
            ClientDef("ameide", name, service_account_roles={}, rotated_period=ROTATED_PERIOD)
            for name in ROLLING
        ),
        ClientDef("ameide", "rolling-nothing-kept", service_account_roles={}, rotated_period=0),
        *(
            ClientDef(
                "ameide",
                name,
                service_account_roles={},
                rotated_period=EXPIRING_PERIOD,
                secret_expiration=EXPIRING_PERIOD,
            )
            for name in ("expiring-contract", "expiring-patched")
        ),
    )
    return World(realms, clients)


def provision(api: AdminApi, world: World) -> None:
    """Create `world` on a real Keycloak through the Admin REST API."""
    for realm in world.realms:
        api.ok("POST", "", json={"realm": realm, "enabled": True})
    for client in world.clients:
        api.ok("POST", f"/{client.realm}/clients", json=client.representation())
    for client in world.clients:
        if client.service_account_roles:
            api.grant_client_roles(client.realm, client.client_id, client.service_account_roles)
    for realm in world.realms:
        profiles, policies = rotation_policies([c for c in world.clients if c.realm == realm])
        if profiles["profiles"]:
            api.ok("PUT", f"/{realm}/client-policies/profiles", json=profiles)
            api.ok("PUT", f"/{realm}/client-policies/policies", json=policies)


def provision_emulator(emulator: Any, world: World) -> None:
    """Create `world` on a `KeycloakEmulator` through its setup API."""
    for realm in world.realms:
        emulator.add_realm(realm)
    for client in world.clients:
        emulator.add_client(
            client.realm,
            client.client_id,
            secret=client.secret,
            public=client.kind == "public",
            bearer_only=client.kind == "bearer-only",
            authenticator="client-jwt" if client.kind == "client-jwt" else "client-secret",
            service_account=client.service_account_roles is not None,
            service_account_roles={k: list(v) for k, v in (client.service_account_roles or {}).items()},
            rotation_policy=client.rotated_period is not None,
            rotated_expiration=client.rotated_period or 0,
            secret_expiration=client.secret_expiration,
        )


def main() -> int:
    env = dict(os.environ)
    env.setdefault("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
    env.setdefault("KC_BOOTSTRAP_ADMIN_PASSWORD", "admin-" + uuid.uuid4().hex[:8])
    workdir = cache_dir() / "run"
    with running_keycloak(workdir, env) as keycloak:
        api = keycloak.admin_api()
        provision(api, build_world())
        api.close()
        booted = f"booted in {keycloak.boot_seconds:.1f} s"
        print(f"Keycloak {KEYCLOAK_VERSION} at {keycloak.url} ({booted}); Ctrl-C stops")
        with suppress(KeyboardInterrupt):
            keycloak.process.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
