"""Pure parts of the Web API client: parameter encoding, version choice, error meanings."""

from __future__ import annotations

import json

import pytest

from vdsmlib.webapi import Json, WebApiError, error_meaning
from vdsmlib.webapi.client import choose_version, encode_params
from vdsmlib.webapi.errors import error_hint

NFS = {"path": "entry.cgi", "minVersion": 1, "maxVersion": 3, "requestFormat": "JSON"}


def test_encoding_of_scalars_lists_and_objects() -> None:
    encoded = encode_params(
        {
            "enable_nfs": True,
            "enable_nfs_v4": False,
            "limit": -1,
            "additional": ["active_status"],
            "shareinfo": {"name": "ci", "vol_path": "/volume1"},
            "skipped": None,
            "location": "all",
        },
        json_format=False,
    )
    assert encoded == {
        "enable_nfs": "true",
        "enable_nfs_v4": "false",
        "limit": "-1",
        "additional": '["active_status"]',
        "shareinfo": '{"name": "ci", "vol_path": "/volume1"}',
        "location": "all",
    }


def test_strings_are_quoted_for_json_format_apis() -> None:
    assert encode_params({"location": "all", "n": 3}, json_format=True) == {
        "location": '"all"',
        "n": "3",
    }
    # A string that looks like a number stays a string for DSM.
    assert json.loads(encode_params({"x": "123"}, json_format=True)["x"]) == "123"
    assert encode_params({"volume_path": Json("/volume1")}, json_format=False) == {
        "volume_path": '"/volume1"'
    }


def test_unencodable_values_are_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        encode_params({"x": {1, 2}}, json_format=False)


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [(None, 3), (2, 2), ((1, 2), 2), ((2, 9), 3), ((3, 3), 3), ((0, 1), 1)],
)
def test_version_choice(wanted: int | tuple[int, int] | None, expected: int) -> None:
    assert choose_version("SYNO.Core.FileServ.NFS", NFS, wanted) == expected


@pytest.mark.parametrize("wanted", [4, 0, (4, 7)])
def test_version_outside_the_servers_range_is_104(wanted: int | tuple[int, int]) -> None:
    with pytest.raises(WebApiError) as exc:
        choose_version("SYNO.Core.FileServ.NFS", NFS, wanted)
    assert exc.value.code == 104
    assert "offers versions 1-3" in str(exc.value)


def test_version_choice_rejects_a_broken_info_entry() -> None:
    with pytest.raises(WebApiError, match="no usable version range"):
        choose_version("X", {"path": "entry.cgi"}, None)
    with pytest.raises(ValueError, match="empty"):
        choose_version("X", NFS, (3, 1))


def test_error_meanings_depend_on_the_api() -> None:
    assert error_meaning(400, "SYNO.API.Auth") == "no such account or wrong password"
    assert error_meaning(402, "SYNO.Core.Share") == "no such share"
    assert error_meaning(402, "SYNO.API.Auth") == "permission denied"
    assert error_meaning(18990538, "SYNO.Core.ISCSI.LUN") == "duplicated LUN name"
    assert error_meaning(119, "SYNO.Core.Share") == "invalid session"
    assert error_meaning(119) == "invalid session"
    assert error_meaning(999999) == "unknown error code"
    assert "X-SYNO-TOKEN" in (error_hint(119) or "")
    assert error_hint(400, "SYNO.Core.Share") is None


def test_error_from_code_message() -> None:
    err = WebApiError.from_code(
        400,
        api="SYNO.API.Auth",
        method="login",
        version=7,
        url="http://h:5000/webapi/entry.cgi",
        context=" for account 'vdsm'",
    )
    assert str(err) == (
        "SYNO.API.Auth login v7 at http://h:5000/webapi/entry.cgi failed for account 'vdsm': "
        "400: no such account or wrong password; check the admin user name and password in "
        "params"
    )
    assert (err.code, err.api, err.method, err.version) == (400, "SYNO.API.Auth", "login", 7)
    assert err.meaning == "no such account or wrong password"
