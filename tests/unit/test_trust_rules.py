"""Secrets masking, session ids in run files, parameter checks and OS errors in one line."""

from __future__ import annotations

import ast
import errno
import json
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from vdsmlib.params import (
    NOTEBOOK_PARAMETERS,
    ParamsError,
    check_notebook_parameters,
    load_params,
)
from vdsmlib.pipeline.run import Build, describe_os_error
from vdsmlib.project import notebooks_dir
from vdsmlib.wizard.secrets import MASK, forget_cookies, mask_text, scrub_zip, session_ids

PASSWORD = 'S3cure Pa$$/w0rd&"x"+%'


@pytest.mark.parametrize(
    "form",
    [
        PASSWORD,
        json.dumps(PASSWORD)[1:-1],
        urllib.parse.quote(PASSWORD, safe=""),
        urllib.parse.quote_plus(PASSWORD),
        urllib.parse.quote(PASSWORD, safe="").lower(),
        json.dumps(urllib.parse.quote_plus(PASSWORD))[1:-1],
    ],
    ids=["raw", "json", "url", "url-plus", "url-lower", "json-of-url"],
)
def test_masking_covers_raw_url_encoded_and_json_escaped(form: str) -> None:
    text = f"POST /webapi/entry.cgi account=vdsm&passwd={form}&format=cookie"
    masked = mask_text(text, [PASSWORD])
    assert form not in masked
    assert f"passwd={MASK}&format=cookie" in masked


def test_scrub_zip_masks_url_encoded_form_bodies(tmp_path: Path) -> None:
    trace = tmp_path / "admin.trace.zip"
    body = "username=vdsm&passwd=" + urllib.parse.quote_plus(PASSWORD)
    with zipfile.ZipFile(trace, "w") as z:
        z.writestr("trace.network", json.dumps({"postData": body}))
    assert scrub_zip(trace, [PASSWORD]) == 1
    with zipfile.ZipFile(trace) as z:
        text = z.read("trace.network").decode()
    assert urllib.parse.quote_plus(PASSWORD) not in text and MASK in text


def test_session_ids_found_in_state_traces_and_notebooks(tmp_path: Path) -> None:
    sids = {f"sid{i}-" + "A1b2C3d4E5f6G7h8" for i in range(4)}
    a, b, c, d = sorted(sids)
    (tmp_path / "browser-state.json").write_text(
        json.dumps({"cookies": [{"name": "id", "value": a}], "origins": []})
    )
    (tmp_path / "evidence").mkdir()
    with zipfile.ZipFile(tmp_path / "evidence" / "admin.trace.zip", "w") as z:
        header = {"name": "Cookie", "value": f"id={b}"}
        z.writestr("trace.network", json.dumps({"headers": [header]}))
        z.writestr("resources/x.json", json.dumps({"data": {"sid": c}}))
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "services.ipynb").write_text(json.dumps({"text": f"_sid={d}&x=1"}))
    assert session_ids(tmp_path) == sids
    forget_cookies(tmp_path / "browser-state.json")
    assert (tmp_path / "browser-state.json").stat().st_mode & 0o777 == 0o600
    assert a not in (tmp_path / "browser-state.json").read_text()


def _declared_notebook_parameters() -> set[str]:
    nb = json.loads((notebooks_dir() / "build.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}  # type: ignore[attr-defined]


def test_notebook_parameters_match_build_ipynb() -> None:
    assert set(NOTEBOOK_PARAMETERS) == _declared_notebook_parameters()


def test_unknown_notebook_parameter_is_an_error() -> None:
    with pytest.raises(ParamsError, match=r"unknown parameter.*admin_pasword"):
        check_notebook_parameters({"dsm_version": "sim", "admin_pasword": "x"})
    check_notebook_parameters({"dsm_version": "sim", "_i1": "ipython's own", "no_cache": True})


@pytest.mark.parametrize("value", ["maybe", "True", 1, None])
def test_booleans_accept_only_booleans(value: object) -> None:
    with pytest.raises(ParamsError, match="no_cache must be true or false"):
        check_notebook_parameters({"no_cache": value})
    with pytest.raises(ParamsError, match="no_cache must be true or false"):
        Build("sim", no_cache=value)  # type: ignore[arg-type]
    with pytest.raises(ParamsError, match="keep must be true or false"):
        Build("sim", keep=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("image_repository", "Ghcr.io/Me/Image"),
        ("image_repository", "ghcr.io/me/image:latest"),
        ("image_repository", "ghcr.io//image"),
        ("cache_repository", "localhost:5000/cache with space"),
    ],
)
def test_repositories_are_references(name: str, value: str) -> None:
    with pytest.raises(ParamsError, match=f"{name} .* is not a Docker repository reference"):
        load_params("sim", {name: value})


def test_valid_repositories_pass() -> None:
    params = load_params(
        "sim", {"image_repository": "localhost:5000/me/vdsm", "cache_repository": "reg.lan/c"}
    )
    assert params.image.repository == "localhost:5000/me/vdsm"


@pytest.mark.parametrize(
    ("code", "hint"),
    [(errno.ENOSPC, "free space there"), (errno.EROFS, "make it writable"), (errno.EIO, "check")],
)
def test_os_error_is_one_line_with_path_and_what_to_do(code: int, hint: str) -> None:
    err = OSError(code, "reason", "/out/run/evidence/boot-1.png")
    line = describe_os_error(err)
    assert "\n" not in line
    assert line.startswith("/out/run/evidence/boot-1.png: reason: ")
    assert hint in line


def test_an_os_error_without_a_file_names_the_fullest_folder(tmp_path: Path) -> None:
    err = OSError(errno.ENOSPC, "No space left on device")  # what a failed write() raises
    line = describe_os_error(err, [Path("/nonexistent-folder"), tmp_path])
    assert line.startswith(f"{tmp_path}: No space left on device: free space there")
