"""Whole builds against the simulator made awkward with its scenario knobs (SIM_*).

Knobs are part of the boot fingerprint, so every knob set is a cold boot (about a minute each):
the module runs three builds, with as many knobs combined per build as stay honest.

- post-wizard screens reordered and subset (``SIM_SCREENS``), inline;
- seeded screens + slow transitions + DSM 7.3.2 token enforcement, through papermill on
  ``notebooks/build.ipynb`` (the notebook takes ``sim_knobs``);
- an unexpected dialog (``SIM_EXTRA_DIALOG``) fails the build through papermill with a
  diagnosis in the notebooks, result.json and report.html; ``explore.ipynb`` then runs on that
  failed run under papermill and in JupyterLab through Chromium (its widget panel clicked);
  then ``make lab RUN=...`` and Chromium step through the failed
  stage's notebook: to the dialog, the suggestion inserted, the screen performed, resumed green.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import papermill
import pytest
import yaml
from vdsm_sim.guest.scenario import Scenario

from tests.integration.conftest import TEST_REPOSITORY, Builds
from tests.poll import poll
from tests.screens import SIM_TO_PROFILE
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import find_images
from vdsmlib.evidence.report import SIZE_CAP
from vdsmlib.pipeline import BuildRecord, load_record
from vdsmlib.readiness import ReadinessTimeout
from vdsmlib.webapi.client import DsmClient
from vdsmlib.webapi.errors import WebApiError
from vdsmlib.webapi.readiness import DsmApiReady

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
POST_WIZARD = ROOT / "params" / "profiles" / "dsm-7.2.2" / "post-wizard.yaml"
SIM = {"user": "vdsm", "password": "CiNas-2024-Ready"}

_SHOT = re.compile(r"^post-wizard-\d\d-(?P<screen>.+)\.png$")


def post_wizard_screens(screenshots: list[str]) -> list[str]:
    """The screens the post-wizard stage screenshotted, in order (``post-wizard-NN-<id>.png``)."""
    names = sorted(Path(p).name for p in screenshots if Path(p).name.startswith("post-wizard-"))
    return [m["screen"] for n in names if (m := _SHOT.match(n))]


def expected_screens(knobs: dict[str, str]) -> list[str]:
    """The screens the simulator shows for ``knobs`` (its own ordering rule), as profile ids."""
    return [SIM_TO_PROFILE[s] for s in Scenario.from_env(knobs).screens]


def assert_complete(record: BuildRecord | dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every stage ran (prepare may reuse the build base), smoke included."""
    stages: list[dict[str, Any]] = (
        record["stages"] if isinstance(record, dict) else [vars(s) for s in record.stages]
    )
    status = record["status"] if isinstance(record, dict) else record.status
    statuses = {s["name"]: s["status"] for s in stages}
    assert status == "ok"
    assert list(statuses) == [
        "prepare", "boot", "admin", "post-wizard", "services", "flatten", "smoke"
    ]  # fmt: skip
    assert statuses["prepare"] in ("ran", "skipped")
    assert {statuses[s] for s in list(statuses)[1:]} == {"ran"}, statuses
    return {s["name"]: s for s in stages}


def test_reordered_subset_of_post_wizard_screens(builds: Builds) -> None:
    knobs = {"SIM_SCREENS": "notification-setup,notification-reminder,update-options,2fa-promo,"
             "mfa-warning"}  # fmt: skip
    record = builds.build(overrides={"sim_knobs": knobs}, executor="inline", no_cache=True)
    assert_complete(record)
    assert record.params["env"] == knobs
    assert post_wizard_screens(record.screenshots) == [
        "notification-setup",
        "notification-reminder",
        "update-options",
        "2fa-promotion",
        "mfa-warning",
    ]
    assert all(Path(p).is_file() and Path(p).stat().st_size > 0 for p in record.screenshots)
    assert record.restore_to_ready_seconds is not None  # smoke started the final image


def test_seeded_slow_token_enforcing_build_through_papermill(
    builds: Builds, client: docker.DockerClient, tmp_path: Path
) -> None:
    knobs = {"SIM_SCREEN_SEED": "7", "SIM_TRANSITION_MS": "1200", "SIM_REQUIRE_SYNOTOKEN": "1"}
    out = tmp_path / "out"
    executed = tmp_path / "build.ipynb"
    try:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "build.ipynb"),
            str(executed),
            parameters={
                "sim_knobs": knobs,
                "out_dir": str(out),
                "image_repository": TEST_REPOSITORY,
                "executor": "inline",
                "no_cache": True,
            },
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    finally:
        builds.run_ids += [p.parent.name for p in out.glob("*/result.json")]
    result = json.loads((out / "latest" / "result.json").read_text())
    stages = assert_complete(result)
    # the notebook handed the knobs to the simulator container
    assert result["params"]["env"] == knobs
    injected = [
        c for c in json.loads(executed.read_text())["cells"]
        if "injected-parameters" in c["metadata"].get("tags", [])
    ]  # fmt: skip
    assert "sim_knobs" in "".join(injected[0]["source"])
    expected = expected_screens(knobs)
    assert post_wizard_screens(result["screenshots"]) == expected
    run_dir = (out / "latest").resolve()  # result.json's paths are relative to it
    assert all((run_dir / p).is_file() for p in result["screenshots"])
    # Every screen stayed 1.2 s after its action and the engine waited for it to leave: the
    # screenshots (taken as each screen is recognised) are at least that far apart. Without the
    # knob they are 0.2-0.8 s apart.
    shots = sorted(p for p in result["screenshots"] if _SHOT.match(Path(p).name))
    times = [(run_dir / p).stat().st_mtime for p in shots]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    assert gaps and min(gaps) >= 1.2, gaps
    assert stages["post-wizard"]["seconds"] >= 1.2 * (len(expected) - 1)
    # The services were written with the SynoToken, and the final image still enforces it:
    # the knob reached the guest and its state survived the checkpoints.
    image = result["image"]
    container = client.containers.run(
        image,
        detach=True,
        ports={"5000/tcp": ("127.0.0.1", None)},
        labels=L.owner_labels("test", result["run_id"]),
        # the snapshot was taken in NAT mode, which a restore needs too (params/sim.yaml run)
        devices=["/dev/net/tun:/dev/net/tun:rwm"],
        cap_add=["NET_ADMIN"],
    )
    try:
        container.reload()
        port = int(container.ports["5000/tcp"][0]["HostPort"])
        with DsmClient(f"http://127.0.0.1:{port}", timeout=5) as dsm:
            _wait_for_api(dsm, container, timeout=90)
            with dsm.login(SIM["user"], SIM["password"], syno_token=False) as session:
                with pytest.raises(WebApiError) as exc:
                    session.nfs_set(enable_nfs=True)
                assert exc.value.code == 119
            with dsm.login(SIM["user"], SIM["password"]) as session:
                assert session.nfs_get()["enable_nfs"] is True
                assert session.smb_get()["enable_samba"] is True
    finally:
        container.remove(force=True, v=True)


def _wait_for_api(dsm: DsmClient, container: Any, *, timeout: float) -> None:
    DsmApiReady(dsm.base_url, timeout=timeout, request_timeout=dsm.timeout).wait(
        describe=lambda: container.logs(tail=20).decode(errors="replace")
    )


def _outputs(notebook: Path) -> list[dict[str, Any]]:
    cells = json.loads(notebook.read_text())["cells"]
    return [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _embedded_pngs(notebook: Path) -> list[str]:
    """The captions of the screenshots embedded in an executed notebook."""
    found = []
    for output in _outputs(notebook):
        data = output.get("data", {})
        page = "".join(data.get("text/html", ""))
        if "data:image/png;base64," in page:
            found.append("".join(data.get("text/plain", "")))
    return found


@pytest.fixture
def lab_out(tmp_path: Path) -> Iterator[Path]:
    """An ``out/`` folder inside the checkout (JupyterLab's file browser reaches only the
    checkout), removed afterwards."""
    out = ROOT / "out" / f"test-{tmp_path.name}"
    yield out
    shutil.rmtree(out, ignore_errors=True)


def test_unexpected_dialog_fails_post_wizard_with_a_diagnosis(
    builds: Builds, client: docker.DockerClient, tmp_path: Path, lab_out: Path
) -> None:
    """Through papermill with one notebook per stage, as ``make build`` runs it."""
    profile = yaml.safe_load(POST_WIZARD.read_text())["timeouts"]
    knobs = {"SIM_EXTRA_DIALOG": "Storage Pool Check"}
    out = lab_out
    executed = tmp_path / "build.ipynb"
    started = time.monotonic()
    try:
        with pytest.raises(papermill.PapermillExecutionError) as exc:
            papermill.execute_notebook(
                str(ROOT / "notebooks" / "build.ipynb"),
                str(executed),
                parameters={
                    "sim_knobs": knobs,
                    "out_dir": str(out),
                    "image_repository": TEST_REPOSITORY,
                    "executor": "notebook",
                    "no_cache": True,
                },
                cwd=str(ROOT / "notebooks"),
                progress_bar=False,
            )
    finally:
        builds.run_ids += [p.parent.name for p in out.glob("*/result.json")]
    seconds = time.monotonic() - started
    err = exc.value
    # one concise line: the stage, the unknown modal, where the screenshot and report are
    assert err.ename == "BuildFailed"
    assert "\n" not in err.evalue
    assert err.evalue.startswith("build failed: stage post-wizard: "), err.evalue
    assert "timeouts.modal" in err.evalue
    assert "evidence/post-wizard-unknown.png" in err.evalue and "report.html" in err.evalue
    assert len(err.traceback) <= 3, err.traceback

    run_dir = (out / "latest").resolve()
    record = load_record(run_dir / "result.json")
    statuses = {s.name: s.status for s in record.stages}
    assert record.status == "failed" and record.error and "post-wizard" in record.error
    assert statuses["boot"] == statuses["admin"] == "ran"
    assert statuses["post-wizard"] == "failed"
    assert statuses["services"] == statuses["flatten"] == statuses["smoke"] == "not-reached"
    post = next(s for s in record.stages if s.name == "post-wizard")
    assert "\n" not in post.detail
    # result.json lists the failing stage's notebook and evidence, relative to the run folder
    failure = record.failure
    assert failure is not None and failure["stage"] == "post-wizard"
    assert failure["notebook"] == "notebooks/post-wizard.ipynb" == post.notebook
    assert failure["screenshot"] == "evidence/post-wizard-unknown.png"
    assert failure["suggestion"] == "evidence/post-wizard-unknown.yaml"
    assert failure["video"] == "evidence/post-wizard.webm"
    assert failure["screenshots"], "the welcome-wizard steps before the dialog were handled"
    assert post.evidence == failure["files"] and "notebooks/post-wizard.ipynb" in post.evidence
    for name in [*failure["files"], *failure["screenshots"]]:
        assert not Path(name).is_absolute() and (run_dir / name).stat().st_size > 0, name
    # no absolute path of this machine in the record, also not inside its messages
    text = (run_dir / "result.json").read_text()
    assert str(run_dir) not in text and str(ROOT.resolve()) not in text

    # reported within seconds of the dialog showing, not after timeouts.screen
    evidence = run_dir / "evidence"
    shot = evidence / "post-wizard-unknown.png"
    last_handled = max((run_dir / p).stat().st_mtime for p in failure["screenshots"])
    waited = shot.stat().st_mtime - last_handled
    assert waited < 30 < profile["screen"], waited
    # the diagnosis files
    for suffix in ("yaml", "html", "txt", "png"):
        path = evidence / f"post-wizard-unknown.{suffix}"
        assert path.is_file() and path.stat().st_size > 0, path
    suggestion = (evidence / "post-wizard-unknown.yaml").read_text()
    assert "click: button[syno-id='sim-extra-dialog-fbar-ok']" in suggestion
    assert "Storage Pool Check" in suggestion
    assert "Storage Pool Check" in (evidence / "post-wizard-unknown.txt").read_text()
    assert "sim-extra-dialog" in (evidence / "post-wizard-unknown.html").read_text()
    assert str(shot) in record.screenshots

    # the failed stage notebook and the build notebook hold the unknown screen's screenshot
    stage_shots = _embedded_pngs(run_dir / "notebooks" / "post-wizard.ipynb")
    assert any("post-wizard-unknown.png" in c for c in stage_shots), stage_shots
    build_shots = _embedded_pngs(executed)
    assert [c for c in build_shots if "post-wizard-unknown.png" in c] == build_shots, build_shots
    assert len(build_shots) == 1  # the other screens are in the stage notebooks, not twice
    assert executed.stat().st_size < 5_000_000
    # the unknown screen's clip, up to the failure: listed, embedded in the stage notebook
    # (with the clip of each screen before it), referenced by path from the build notebook
    assert (
        failure["clip"] == "evidence/clips/post-wizard-unknown.webm"
        and failure["clip"] in post.evidence
    )
    handled = [s for s in record.screens if s["stage"] == "post-wizard" and not s["skipped"]]
    assert [s["screen"] for s in handled][-1] == "unknown" and handled[-1]["failed"]
    assert all((run_dir / s["clip"]).stat().st_size > 0 for s in handled)
    stage_html = "".join(
        "".join(o.get("data", {}).get("text/html", ""))
        for o in _outputs(run_dir / "notebooks" / "post-wizard.ipynb")
    )
    assert stage_html.count("data:video/webm;base64,") == len(handled)
    build_html = "".join(
        "".join(o.get("data", {}).get("text/html", "")) for o in _outputs(executed)
    )
    assert "data:video/webm" not in build_html and "clips/post-wizard-unknown.webm" in build_html
    plain = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in _outputs(executed))
    assert "IPython.core.display" not in plain
    # report.html: self-contained, under its cap, with the failure and every screen
    report = (run_dir / "report.html").read_text()
    assert len(report.encode()) < SIZE_CAP
    assert "<svg" in report and "post-wizard-unknown.png" in report
    assert report.count("data:image/jpeg;base64,") >= len(failure["screenshots"]) + 1

    # nothing tagged for the failed stage, nothing left running
    assert find_images(client, {L.RUN_ID: record.run_id, L.STAGE: "start-ready"})
    assert not find_images(client, {L.RUN_ID: record.run_id, L.STAGE: "final"})
    assert builds.containers_of(record.run_id) == []

    # explore.ipynb from this failed run (papermill: static output): the run's own checkpoint,
    # admin replayed, stopped at the dialog; the suggestion inserted into a copy of the
    # profiles, reloaded, and the stage steps on to its end
    profiles = tmp_path / "profiles"
    shutil.copytree(ROOT / "params" / "profiles", profiles)
    explored = tmp_path / "explore.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "explore.ipynb"),
        str(explored),
        parameters={
            "out_dir": str(out),  # run_dir empty: the last failed run there
            "profiles": str(profiles),
            "selector": "button[syno-id='sim-extra-dialog-fbar-ok']",
            "insert": True,
            "close": True,
        },
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
    )
    state = json.loads((run_dir / "state.json").read_text())
    texts = "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for o in _outputs(explored)
    )
    assert f"restoring {state['checkpoints']['start-ready']}" in texts
    assert "handled on the way: " in texts and "stage post-wizard is done" in texts
    assert "count=1, visible=1" in texts  # the selector tried on the dialog
    shots = _embedded_pngs(explored)
    assert any("the screen that failed" in c and "post-wizard-unknown.png" in c for c in shots)
    assert "inserted storage-pool-check into " + str(profiles) in texts
    assert any("storage-pool-check" in c for c in shots)  # performed, with its screenshot
    widgets = [o for o in _outputs(explored)
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]  # fmt: skip
    assert widgets, "the panel"
    inserted = yaml.safe_load((profiles / "dsm-7.2.2" / "post-wizard.yaml").read_text())
    assert inserted["screens"][0]["id"] == "storage-pool-check"
    assert "storage-pool-check" not in POST_WIZARD.read_text()
    labels = [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.STAGE}=explore-post-wizard"]
    assert client.containers.list(all=True, filters={"label": labels}) == []

    # the same in JupyterLab, through Chromium: the panel's perform button shows its screenshot
    lab_profiles = tmp_path / "lab-profiles"
    shutil.copytree(ROOT / "params" / "profiles", lab_profiles)
    panel = explore_in_jupyterlab(run_dir, lab_profiles, tmp_path, client)
    assert "performed storage-pool-check" in panel, panel
    assert "storage-pool-check" in (lab_profiles / "dsm-7.2.2" / "post-wizard.yaml").read_text()
    # the must-show: `make lab RUN=...` as the Makefile starts it, Chromium through the failed
    # run's stage notebook to a green resume; JupyterLab leaves the checkout as it found it
    # apart from the profile entry the person inserted (the fix to commit)
    before = _porcelain()
    original = POST_WIZARD.read_text()
    try:
        resumed = step_through_in_jupyterlab(run_dir, tmp_path, builds)
        changed = set(_porcelain()) - set(before)
        assert changed == {" M params/profiles/dsm-7.2.2/post-wizard.yaml"}, changed
        assert "sim-extra-dialog-fbar-ok" in POST_WIZARD.read_text()
    finally:
        POST_WIZARD.write_text(original)
    assert TEST_REPOSITORY in resumed, resumed
    new_run = (out / "latest").resolve()
    assert new_run != run_dir
    new_record = load_record(new_run / "result.json")
    assert new_record.status == "ok" and str(new_record.image).startswith(TEST_REPOSITORY)
    assert {s.name: s.status for s in new_record.stages}["post-wizard"] == "ran"
    assert (new_run / "report.html").stat().st_size > 0
    for stage in ("admin", "post-wizard", "services", "smoke"):
        assert _outputs(new_run / "notebooks" / f"{stage}.ipynb"), stage
    assert not list(run_dir.rglob(".ipynb_checkpoints")) and not list(
        new_run.rglob(".ipynb_checkpoints")
    )
    print(f"extra dialog: build failed after {seconds:.0f} s (post-wizard {post.seconds:.0f} s, "
          f"unknown reported {waited:.1f} s after the last known screen)")  # fmt: skip


def explore_in_jupyterlab(
    run_dir: Path, profiles: Path, work: Path, client: docker.DockerClient
) -> str:
    """JupyterLab with explore.ipynb on ``run_dir``, opened in Chromium through Playwright: run
    every cell, click the panel's "insert suggestion" and "perform", return the panel's text
    once its output holds a screenshot."""
    import subprocess
    import urllib.request

    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    from playwright.sync_api import sync_playwright

    from tests.integration.conftest import free_port
    from vdsmlib.wizard import CHROMIUM_ARGS

    lab = work / "lab"
    lab.mkdir()
    notebook = load_notebook_node(str(ROOT / "notebooks" / "explore.ipynb"))
    notebook = parameterize_notebook(notebook, {"run_dir": str(run_dir), "profiles": str(profiles)})
    nbformat.write(notebook, lab / "explore.ipynb")
    port, token = free_port(), "vdsm-ci-test"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={lab}", "--LabApp.expose_app_in_browser=True"],
        cwd=lab, stdout=subprocess.DEVNULL, stderr=(work / "lab.log").open("w"),
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        status = f"{base}/api/status?token={token}"
        try:
            poll(
                lambda: urllib.request.urlopen(status, timeout=2).close(),
                what="JupyterLab",
                timeout=60,
                retryable=(OSError,),
                alive=lambda: None if server.poll() is None else f"it exited {server.returncode}",
            )
        except ReadinessTimeout as err:
            pytest.fail(f"JupyterLab did not start ({err}): {(work / 'lab.log').read_text()}")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/explore.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session",
                timeout=60_000,
            )
            try:
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                # restore, replay admin, step to the dialog: the panel shows when the cell ends
                perform = page.locator(".jupyter-widgets button", has_text="perform")
                perform.wait_for(timeout=300_000)
                panel = page.locator(".widget-vbox").first
                page.locator(".jupyter-widgets button", has_text="insert suggestion").click()
                panel.get_by_text("insert suggestion: done").wait_for(timeout=60_000)
                perform.click()
                panel.get_by_text("perform: done").wait_for(timeout=120_000)
                shot = panel.locator(".widget-output img[src^='data:image/png;base64,']")
                shot.first.wait_for(timeout=10_000)
                return panel.inner_text()
            finally:
                page.screenshot(path=str(work / "jupyterlab.png"), full_page=True)
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        labels = [f"{L.OWNER}={L.OWNER_VALUE}", f"{L.STAGE}=explore-post-wizard"]
        for container in client.containers.list(all=True, filters={"label": labels}):
            container.remove(force=True, v=True)


def _porcelain() -> list[str]:
    import subprocess

    out = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


#: JavaScript run in JupyterLab's page: the current notebook panel
_PANEL = "window.jupyterapp.shell.currentWidget"


def step_through_in_jupyterlab(run_dir: Path, work: Path, builds: Builds) -> str:
    """``make lab RUN=<run_dir>`` (a subprocess, as a person starts it), Chromium opens the
    failed stage's step notebook from the file browser, runs its cells to the screen that
    failed, inserts the suggestion, performs the screen and resumes; returns the resume cell's
    text once the build ended."""
    import os
    import subprocess
    import urllib.request

    from playwright.sync_api import Page, sync_playwright

    from tests.integration.conftest import free_port
    from vdsmlib.wizard import CHROMIUM_ARGS

    port, token = free_port(), "vdsm-ci-test"
    rel_run = run_dir.relative_to(ROOT)
    log = work / "make-lab.log"
    venv = Path(sys.executable).parent.parent
    server = subprocess.Popen(
        ["make", "-C", str(ROOT), "lab", f"RUN={rel_run}", f"VENV={venv}",
         f"LAB_ARGS=--port={port} --ServerApp.token={token} --LabApp.expose_app_in_browser=True"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'simulator'}"},
    )  # fmt: skip
    step_copy = run_dir / "notebooks" / "post-wizard.step.ipynb"

    def cell_text(page: Page, index: int) -> str:
        return str(page.evaluate(f"i => {_PANEL}.content.widgets[i].node.innerText", index))

    def run_cell(page: Page, index: int, *, expect: str, timeout: float) -> str:
        """Run cell ``index`` (its old outputs and count cleared first) and wait until it ran
        (a count, no ``[*]``); ``expect`` must be in its text (an error shows there too)."""
        page.evaluate(
            f"async i => {{ const p = {_PANEL}; const c = p.content.widgets[i];"
            " c.model.outputs.clear(); c.model.executionCount = null;"
            " p.content.activeCellIndex = i;"
            " void window.jupyterapp.commands.execute('notebook:run-cell'); }",
            index,
        )

        # Playwright's own wait (its sync API is not for other threads, as poll's checks are)
        page.wait_for_function(
            f"i => {{ const c = {_PANEL}.content.widgets[i];"
            " return c.model.executionCount !== null && !(c.node.querySelector("
            "'.jp-InputPrompt')?.innerText || '').includes('*'); }",
            arg=index,
            timeout=timeout * 1000,
            polling=500,
        )
        page.evaluate(f"i => {_PANEL}.content.widgets[i].node.scrollIntoView(false)", index)
        text = cell_text(page, index)
        errors = page.evaluate(
            f"i => {_PANEL}.content.widgets[i].model.outputs.toJSON()"
            ".filter(o => o.output_type === 'error').length",
            index,
        )
        assert not errors and expect in text, text
        return text

    def add_cell(page: Page, after: int, source: str) -> int:
        page.evaluate(
            f"([i, src]) => {{ const p = {_PANEL}; p.content.activeCellIndex = i;"
            " window.jupyterapp.commands.execute('notebook:insert-cell-below');"
            " p.content.activeCell.model.sharedModel.setSource(src); }",
            [after, source],
        )
        return after + 1

    try:
        base = f"http://127.0.0.1:{port}"
        try:
            poll(
                lambda: urllib.request.urlopen(
                    f"{base}/api/status?token={token}", timeout=2
                ).close(),
                what="make lab",
                timeout=120,
                retryable=(OSError,),
                alive=lambda: None if server.poll() is None else f"it exited {server.returncode}",
            )
        except ReadinessTimeout as err:
            pytest.fail(f"make lab did not start ({err}): {log.read_text()}")
        assert step_copy.is_file(), log.read_text()  # written by make lab RUN=...
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                page.goto(f"{base}/lab?token={token}")
                # from the file browser: out/.../<run-id>/notebooks/post-wizard.step.ipynb
                for name in (*rel_run.parts, "notebooks", step_copy.name):
                    item = page.locator(
                        ".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$")
                    )
                    item.first.dblclick(timeout=60_000)
                page.wait_for_function(
                    f"() => {_PANEL} && {_PANEL}.context && {_PANEL}.context.path.endsWith("
                    f"{json.dumps(step_copy.name)}) && {_PANEL}.sessionContext.session",
                    timeout=60_000,
                )
                cells = page.evaluate(
                    f"() => {_PANEL}.content.widgets.map(c =>"
                    " [c.model.type, c.model.sharedModel.getSource().trim()])"
                )
                opened = next(
                    i for i, (_, src) in enumerate(cells) if src == "await nb.open_browser()"
                )
                # every code cell down to the open browser (parameters, nb, the VM, the page)
                for i, (kind, src) in enumerate(cells[: opened + 1]):
                    if kind != "code":
                        continue
                    expect = {
                        "await nb.restore_vm()": "replayed admin",
                        "await nb.open_browser()": "the page now",
                    }.get(src, "")
                    run_cell(page, i, expect=expect, timeout=900)
                # to the screen that failed: its screenshot and suggested entry
                failed = add_cell(page, opened, "await nb.to_failure()")
                run_cell(page, failed, expect="Suggested entry", timeout=600)
                inserted = add_cell(page, failed, "nb.insert_suggestion()")
                run_cell(page, inserted, expect="inserted screen", timeout=60)
                performed = add_cell(page, inserted, "await nb.step()")
                run_cell(page, performed, expect="(performed)", timeout=300)
                resume = add_cell(page, performed, "await nb.resume()")
                text = run_cell(page, resume, expect="resuming: new run folder", timeout=3600)
                page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
                return text
            finally:
                page.screenshot(path=str(work / "make-lab.png"), full_page=True)
                browser.close()
    finally:
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        builds.run_ids += [p.parent.name for p in run_dir.parent.glob("*/result.json")]
