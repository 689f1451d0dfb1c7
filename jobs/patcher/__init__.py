"""client-patcher: Keycloak client secrets -> Vault KV v2 -> ESO force-sync."""
