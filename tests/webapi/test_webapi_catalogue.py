"""``SYNO.API.Info query=all`` against the recorded real-DSM catalogue.

The capture (vdsmlib/dsm/captured_catalogue.py, from py-synologydsm-api's
``tests/api_data/dsm_7/const_7_api_info.py``) is the answer of one DiskStation running DSM 7 with
packages installed beside DSM (Active Backup, Download Station, Photos, Surveillance Station and
more). The simulated DSM is a DSM without those packages: it lists every API of DSM itself that the
capture lists, with the same path, versions and request format, and none of the packages' APIs,
which answer 102 ("the API does not exist"), as on a DSM where they are not installed.
"""

from __future__ import annotations

from collections.abc import Callable

from sim_dsm import Sim

from tests.sim.test_guest_api import call, err, ok
from vdsmlib.dsm.captured_catalogue import CAPTURED
from vdsmlib.dsm.webapi import ApiEntry, is_package_api


def test_query_all_lists_every_captured_dsm_api_as_recorded_and_no_package_api(
    sim_factory: Callable[..., Sim],
) -> None:
    sim = sim_factory()
    listed = ok(call(sim.url, "query.cgi", api="SYNO.API.Info", version=1, method="query"))
    own = {name: entry for name, entry in CAPTURED.items() if not is_package_api(name)}
    packages = sorted(set(CAPTURED) - set(own))

    differing = {
        name: listed.get(name)
        for name, entry in own.items()
        if listed.get(name) != ApiEntry(*entry).info()
    }
    print(
        f"query=all lists {len(listed)} APIs; the capture lists {len(CAPTURED)}: "
        f"{len(own)} of DSM itself, {len(own) - len(differing)} of them listed here with the "
        f"recorded path and versions; {len(packages)} of packages DSM installs separately, "
        f"{sum(name in listed for name in packages)} of them listed here"
    )
    assert not differing, sorted(differing)[:10]
    assert len(listed) >= len(own)
    assert not [name for name in packages if name in listed]
    assert set(listed) <= set(CAPTURED)

    sid = sim.admin_sid()
    # A package's API answers as on a DSM without the package: it does not exist (102).
    for name in ("SYNO.DownloadStation2.Task", "SYNO.Foto.Browse.Item", "SYNO.Backup.Task"):
        path, _, maximum, *_ = CAPTURED[name]
        envelope = call(sim.url, path, api=name, version=maximum, method="list", _sid=sid)
        assert err(envelope) == 102, name
