from lab.openbao import OpenBao


def test_openbao_dev_server_serves_kv_v2(openbao: OpenBao, kv_mount: str) -> None:
    client = openbao.client()
    client.secrets.kv.v2.create_or_update_secret("probe", {"value": "x"}, mount_point=kv_mount)
    read = client.secrets.kv.v2.read_secret_version(
        "probe", mount_point=kv_mount, raise_on_deleted_version=True
    )
    assert read["data"]["metadata"]["version"] == 1
