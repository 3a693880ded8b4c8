"""What a consumer's CI tests look like: only the ``dsm`` fixtures of vdsm-ci's pytest plugin.

pip install ./pytest-vdsm   # the light install from this repository: the plugin alone
                            # (or pip install vdsmlib: the whole builder, the plugin too)
pytest --dsm-image ghcr.io/vdsm-ci/vdsm-configured:sim-tcg examples/consumer

This directory has its own pytest.ini, as a consumer's project has its own configuration: the
checkout's (pyproject.toml) is for vdsm-ci's own suite.
"""

from __future__ import annotations

import requests


def test_dsm_answers_api_info(dsm):
    answer = requests.get(
        f"{dsm.url}/webapi/query.cgi",
        params={"api": "SYNO.API.Info", "version": "1", "method": "query", "query": "ALL"},
        timeout=10,
    ).json()
    assert answer["success"] is True
    assert "SYNO.API.Auth" in answer["data"]


def test_admin_session_reads_file_services(dsm):
    assert dsm.client.nfs_get()["enable_nfs"] is True
    assert dsm.client.smb_get()["enable_samba"] is True


def test_btrfs_volume_for_the_csi_driver(dsm):
    volumes = dsm.client.volumes()
    assert any(v["volume_path"] == "/volume1" and v["fs_type"] == "btrfs" for v in volumes)


def test_fresh_dsm_is_a_restore_of_its_own(dsm, fresh_dsm):
    # A share made in one DSM does not exist in a fresh restore of the same image.
    fresh_dsm.client.share_create("consumer-scratch", "/volume1")
    assert "consumer-scratch" in {s["name"] for s in fresh_dsm.client.share_list()}
    assert "consumer-scratch" not in {s["name"] for s in dsm.client.share_list()}
    assert fresh_dsm.container.get_container_id() != dsm.container.get_container_id()
