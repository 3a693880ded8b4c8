"""Answers field by field: the simulated DSM's answer to each call of which a real DSM's answer
was recorded (vdsmlib/dsm/recorded.py) has every key of the recorded one, with the same JSON
type (values may differ). Prints matched/total."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from sim_dsm import ADMIN_PASSWORD, ADMIN_USER, Sim
from vdsm_sim.guest.webapi import CATALOG

from tests.sim.test_guest_api import call, ok
from vdsmlib.dsm.recorded import RECORDED
from vdsmlib.dsm.webapi import CATALOGUE

_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "bool": (bool,), "number": (int, float)}


def mismatches(shape: Any, value: Any, where: str = "data") -> list[str]:
    """Where ``value`` lacks a key of ``shape`` or has another JSON type ([] when none)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        out: list[str] = []
        for key, sub in shape.items():
            if key not in value:
                out.append(f"{where}.{key}: missing")
            else:
                out.extend(mismatches(sub, value[key], f"{where}.{key}"))
        return out
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        if not shape:
            return []
        return [
            m for i, item in enumerate(value) for m in mismatches(shape[0], item, f"{where}[{i}]")
        ]
    if shape == "null":
        return []
    kinds = _TYPES[shape]
    if isinstance(value, bool) and bool not in kinds:
        return [f"{where}: bool, not {shape}"]
    if not isinstance(value, kinds):
        return [f"{where}: {type(value).__name__}, not {shape}"]
    return []


def test_mismatches_finds_missing_keys_and_other_types() -> None:
    shape = {"a": "number", "b": [{"c": "string"}], "d": {"e": "bool"}, "n": "null"}
    assert mismatches(shape, {"a": 1, "b": [{"c": "x"}], "d": {"e": True}, "n": 3}) == []
    assert mismatches(shape, {"a": True, "b": [{"c": 1}], "d": {}}) == [
        "data.a: bool, not number",
        "data.b[0].c: int, not string",
        "data.d.e: missing",
        "data.n: missing",
    ]


def _answer(sim: Sim, sid: str, api: str, method: str, version: int, params: dict[str, str]) -> Any:
    if api == "SYNO.API.Auth":
        resp = requests.post(
            f"{sim.url}/webapi/entry.cgi",
            data={
                "api": api,
                "method": method,
                "version": str(version),
                "account": ADMIN_USER,
                "passwd": ADMIN_PASSWORD,
                "enable_syno_token": "yes",
            },
            timeout=10,
        )
        return ok(resp.json())
    path = CATALOGUE[api].path
    extra: dict[str, Any] = dict(params)
    return ok(call(sim.url, path, api=api, method=method, version=version, _sid=sid, **extra))


def test_answers_have_every_recorded_key_with_its_type(
    sim_factory: Callable[..., Sim], tmp_path: Path
) -> None:
    volume = tmp_path / "volume1"
    sim = sim_factory(SIM_VOLUME_ROOT=str(volume))
    sid = sim.admin_sid()
    served = [r for r in RECORDED if r[0] in CATALOG and r[1] in CATALOG[r[0]].methods]
    # a shared folder holding a file, for File Station's listings
    share = "recorded"
    ok(
        call(
            sim.url,
            api="SYNO.Core.Share",
            version=1,
            method="create",
            name=share,
            shareinfo=f'{{"name":"{share}","vol_path":"/volume1"}}',
            _sid=sid,
        )
    )
    (volume / share).mkdir(parents=True, exist_ok=True)
    (volume / share / "notes.txt").write_text("a file to list\n")
    matched = 0
    failures: dict[str, list[str]] = {}
    for api, method, version, params, source, shape in served:
        filled = {k: v.replace("{share}", share) for k, v in params.items()}
        found = mismatches(shape, _answer(sim, sid, api, method, version, filled))
        if found:
            failures[f"{api} {method} ({source})"] = found
        else:
            matched += 1
    print(f"recorded answers matched field by field: {matched}/{len(RECORDED)}")
    print(f"  served by the simulator: {len(served)}/{len(RECORDED)}")
    for call_name, found in failures.items():
        print(f"  {call_name}: {', '.join(found)}")
    assert not failures, sorted(failures)
    # the APIs clients poll are among those checked
    for api in (
        "SYNO.Core.System",
        "SYNO.Core.System.Utilization",
        "SYNO.Core.SecurityScan.Status",
        "SYNO.Core.Upgrade.Server",
        "SYNO.Core.ExternalDevice.Storage.USB",
        "SYNO.Core.Hardware.FanSpeed",
        "SYNO.Storage.CGI.Storage",
        "SYNO.DSM.Network",
    ):
        assert any(r[0] == api for r in served), api
