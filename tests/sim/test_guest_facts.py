"""The simulator implements DSM's facts (vdsmlib.dsm) and carries them into the guest image.

The guest package is copied into the image on its own (as top-level ``guest``, no ``vdsmlib``
beside it); its ``_dsm/`` links to vdsmlib/dsm's files. These tests copy the package the way
the image build does (following the links) and run it with the standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from vdsm_sim.guest import facts
from vdsm_sim.guest.screens import EXTRA_DIALOG_ID, SCREENS
from vdsm_sim.guest.webapi import CATALOG

from vdsmlib.dsm import errors, policy, screens, webapi

GUEST = Path(__file__).resolve().parents[2] / "vdsmlib" / "sim" / "guest"
DSM = GUEST.parents[1] / "dsm"


def test_on_the_host_the_guest_uses_the_librarys_own_facts() -> None:
    assert facts.policy is policy
    assert facts.screens is screens
    assert facts.webapi is webapi
    assert facts.errors is errors


def test_the_guest_package_links_every_facts_module() -> None:
    modules = {p.name for p in DSM.glob("*.py")}
    linked = GUEST / "_dsm"
    assert {p.name for p in linked.glob("*.py")} == modules
    for name in modules:
        assert (linked / name).resolve() == (DSM / name).resolve(), name


def test_screen_table_is_dsms_screens_plus_the_extra_dialog() -> None:
    assert [s for s in SCREENS if s != EXTRA_DIALOG_ID] == list(screens.SCREEN_IDS)
    for screen_id, fact in screens.POST_WIZARD.items():
        entry = SCREENS[screen_id]
        assert (entry.kind, entry.title, entry.title_selector) == (
            fact.kind,
            fact.title,
            fact.title_selector,
        )
        if fact.action_syno_id is not None:
            assert fact.action_syno_id in {b.syno_id for b in entry.buttons}
        else:
            assert entry.close_act  # the notification panel closes with its tool


def test_every_simulated_api_is_in_dsms_catalogue_with_its_versions() -> None:
    assert set(CATALOG) == set(webapi.CATALOGUE)
    for name, api in CATALOG.items():
        assert api.facts is webapi.CATALOGUE[name]


def test_the_guest_runs_without_vdsmlib(tmp_path: Path) -> None:
    # As the image build does: copy the package, following the links, as top-level "guest".
    shutil.copytree(GUEST, tmp_path / "guest", ignore=shutil.ignore_patterns("__pycache__"))
    assert not any(p.is_symlink() for p in (tmp_path / "guest").rglob("*"))
    log = tmp_path / "guest.log"
    # -I -S: no site-packages, no PYTHONPATH, no current directory: only the stdlib and the copy.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import runpy; "
        "sys.argv = ['guest', '--host', '127.0.0.1', '--port', '0']; "
        "runpy.run_module('guest', run_name='__main__', alter_sys=True)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    env["SIM_SCREENS"] = "2fa-promo,mfa-warning"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", code, str(tmp_path)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        url = found.group(1)
        with urllib.request.urlopen(
            url + "/webapi/query.cgi?api=SYNO.API.Info&version=1&method=query&query=ALL",
            timeout=5,
        ) as answer:
            info = json.load(answer)["data"]
        assert info["SYNO.API.Auth"] == webapi.CATALOGUE["SYNO.API.Auth"].info()
        with urllib.request.urlopen(url + "/sim/state", timeout=5) as answer:
            assert json.load(answer)["screens"] == ["2fa-promo", "mfa-warning"]
        # The admin form enforces DSM's password policy from the same source.
        request = urllib.request.Request(
            url + "/sim/ui/admin",
            data=json.dumps(
                {
                    "device_name": "nas",
                    "nas_account": "ci",
                    "password": "short",
                    "password_confirm": "short",
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            rejected = json.load(answer)
        assert rejected["errors"]["password"] == policy.check_password("short", "ci")
    finally:
        proc.terminate()
        proc.wait(10)
