"""vault-bootstrap: Azure Key Vault -> Vault KV v2, plus dev fixtures."""
