"""The whole build against the DSM simulator: real dockerd, QEMU, Chromium and papermill.

The tests that need a finished build take the ``first_build`` fixture (a full build through
papermill, once per module), so any of them runs alone or in any order; each uses only the
checkpoints and images of its own runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import docker
import nbformat
import papermill
import pytest
import requests

from tests.integration.conftest import TEST_REPOSITORY, Builds, free_port
from tests.integration.test_bad_input import VDSM, vdsm
from tests.poll import poll
from vdsmlib.docker import labels as L
from vdsmlib.docker.container import VmContainer
from vdsmlib.docker.images import find_images, get_image
from vdsmlib.docker.route import container_address, guest_route
from vdsmlib.evidence.report import SIZE_CAP
from vdsmlib.params import load_params
from vdsmlib.pipeline import StageError, load_record
from vdsmlib.readiness import NotReady, ReadinessAborted, wait_for
from vdsmlib.services.dataplane import BUILD_FILE, BUILD_FILE_DATA, SERVICE_PORTS
from vdsmlib.services.spec import dsm_iqn
from vdsmlib.webapi.client import DsmClient, DsmSession
from vdsmlib.webapi.errors import WebApiError
from vdsmlib.webapi.readiness import DsmLoginReady
from vdsmlib.wizard.secrets import session_ids

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
SIM = {"user": "vdsm", "password": "CiNas-2024-Ready"}
#: what a booting DSM answers before its Web API takes a login (as DsmApiReady retries them)
DSM_NOT_YET = (WebApiError, OSError, requests.RequestException)


@pytest.fixture(scope="module")
def first_build(builds: Builds, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`papermill notebooks/build.ipynb` for the simulator, as `make build` runs it."""
    out = builds.out_dir
    executed = tmp_path_factory.mktemp("nb") / "build.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "build.ipynb"),
        str(executed),
        parameters={"out_dir": str(out), "image_repository": TEST_REPOSITORY, "no_cache": True},
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
    )
    result = json.loads((out / "latest" / "result.json").read_text())
    builds.run_ids.append(result["run_id"])
    return {"result": result, "notebook": executed, "out": out}


def test_full_build_record(first_build: dict) -> None:
    result = first_build["result"]
    assert result["status"] == "ok"
    for key in (
        "target",
        "dsm_version",
        "image",
        "image_id",
        "accelerator",
        "admin_user",
        "stages",
    ):
        assert result[key], key
    assert result["target"] == "sim" and result["dsm_version"] == "sim"
    assert result["admin_user"] == SIM["user"]
    statuses = {s["name"]: s["status"] for s in result["stages"]}
    assert list(statuses) == [
        "prepare",
        "boot",
        "admin",
        "post-wizard",
        "services",
        "flatten",
        "smoke",
    ]
    assert statuses["prepare"] in ("ran", "skipped")  # the build base may exist already
    assert {statuses[s] for s in list(statuses)[1:]} == {"ran"}, statuses
    assert all(s["seconds"] > 0 for s in result["stages"][1:])
    assert result["accelerator"] in ("tcg", "kvm")
    assert result["sizes"]["after"] > 0 and result["sizes"]["before"] > 0
    # evidence: a screenshot per wizard screen, videos, and one executed notebook per stage,
    # every path relative to the run folder
    run_dir = (first_build["out"] / result["run_id"]).resolve()
    # before the final checkpoint the guest gave memory to the balloon (virtual-dsm attaches
    # virtio-balloon-pci: src/config.sh at v7.41, pinned in tests/sim/test_cmdline.py)
    services = json.loads((run_dir / "stages" / "services.json").read_text())["facts"]
    assert services["memory_reclaimed_bytes"] > 0, services
    assert 0 < services["final_vm_state_bytes"] < 512 * 2**20, services
    assert any("admin-account" in p for p in result["screenshots"]), result["screenshots"]
    assert all((run_dir / p).is_file() for p in result["screenshots"])
    assert result["videos"] and all((run_dir / p).stat().st_size > 0 for p in result["videos"])
    stage_notebooks = {Path(p).stem for p in result["notebooks"]}
    assert {"boot", "admin", "post-wizard", "services", "flatten", "smoke"} <= stage_notebooks
    # the password never lands in the record or the executed notebooks
    text = (first_build["out"] / "latest" / "result.json").read_text()
    assert SIM["password"] not in text and str(run_dir) not in text
    for nb in result["notebooks"]:
        assert SIM["password"] not in (run_dir / nb).read_text(), nb
    # report.html: self-contained under its cap, a thumbnail per screen; the build notebook small
    report = (run_dir / "report.html").read_text()
    assert len(report.encode()) < SIZE_CAP and "<svg" in report
    assert report.count("data:image/jpeg;base64,") == len(result["screenshots"])
    assert "docker run -d -p 127.0.0.1:5000:5000 " in report and result["image"] in report
    assert first_build["notebook"].stat().st_size < 5_000_000
    # the console says each thing once: the simulator image and the accelerator
    cells = nbformat.read(first_build["notebook"], as_version=4).cells
    lines = [
        line
        for c in cells
        for o in c.get("outputs", [])
        for line in "".join(o.get("text", "")).splitlines()
    ]
    said = [line for line in lines if "simulator image vdsm-ci/sim:" in line]
    assert len(said) <= 1 and len([x for x in lines if "accelerator: " in x]) <= 1, lines
    notebooks = {s["name"]: s["notebook"] for s in result["stages"]}
    assert notebooks["admin"] == "notebooks/admin.ipynb" and notebooks["prepare"] is None
    # a clip per handled wizard screen (result.json), each shown beside its screenshot in its
    # stage notebook (embedded there only), the stage video linked after them
    handled = [s for s in result["screens"] if not s["skipped"]]
    assert {s["stage"] for s in handled} == {"admin", "post-wizard"}, result["screens"]
    assert [s["screen"] for s in handled if s["stage"] == "admin"] == ["welcome", "admin-account"]
    for screen in handled:
        clip = run_dir / screen["clip"]
        assert screen["clip"].startswith("evidence/clips/") and clip.suffix == ".webm"
        assert 0 < clip.stat().st_size < 150_000, clip
        assert 0 <= screen["video_start"] < screen["video_end"]
        assert (run_dir / screen["screenshot"]).is_file() and not screen["failed"]
    for stage in ("admin", "post-wizard"):
        cells = nbformat.read(run_dir / notebooks[stage], as_version=4).cells
        html = "".join(
            o.get("data", {}).get("text/html", "") for c in cells for o in c.get("outputs", [])
        )
        count = sum(1 for s in handled if s["stage"] == stage)
        assert html.count("data:video/webm;base64,") == count, stage
        assert html.count("<video") == count + 1, stage  # + the stage video, by path
        assert f'src="../evidence/{stage}.webm"' in html
    assert "data:video/webm" not in first_build["notebook"].read_text()
    assert report.count(">clip</a>") == len(handled)  # report.html links each clip
    # the orchestrating notebook prints the final image last
    nb = nbformat.read(first_build["notebook"], as_version=4)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert result["image"] in "".join(o.get("text", "") for o in last["outputs"])


def test_final_image_restores_configured_without_wizard(
    first_build: dict, client: docker.DockerClient, port_5000_busy: None
) -> None:
    """`docker run -d -p 127.0.0.1:PORT:5000 --device /dev/net/tun --cap-add NET_ADMIN IMAGE`:
    API and admin login within 90 s through the published port, then healthy. As with
    vdsm/virtual-dsm 7.41 (src/network.sh NAT, src/print.sh), the restored container has no
    /run/shm/dsm.url and nothing answers on its own 127.0.0.1:5000."""
    image = first_build["result"]["image"]
    attrs = client.images.get(image).attrs
    exposed = set(attrs["Config"]["ExposedPorts"])
    assert {"5000/tcp", "5001/tcp", "3260/tcp", "445/tcp", "2049/tcp"} <= exposed
    assert attrs["Config"]["Healthcheck"]["Test"][-1].endswith("vdsm-ci-healthcheck")
    labels = attrs["Config"]["Labels"]
    assert labels[L.FINGERPRINT] == first_build["result"]["fingerprint"]
    assert labels[L.ACCELERATOR] == first_build["result"]["accelerator"]
    assert labels[L.QEMU_VERSION] and labels["org.opencontainers.image.version"]
    port = free_port()
    container = client.containers.run(
        image,
        detach=True,
        ports={"5000/tcp": ("127.0.0.1", port)},
        labels=L.owner_labels("test", first_build["result"]["run_id"]),
        devices=["/dev/net/tun:/dev/net/tun:rwm"],
        cap_add=["NET_ADMIN"],
    )
    try:
        started = time.monotonic()
        dsm = DsmClient(f"http://127.0.0.1:{port}", timeout=5)

        def logged_in() -> DsmSession:
            if "SYNO.API.Auth" not in dsm.api_info("SYNO.API.Auth"):
                raise NotReady("SYNO.API.Info lists no SYNO.API.Auth yet")
            return dsm.login(SIM["user"], SIM["password"], version=3, syno_token=False)

        session = poll(
            logged_in,
            what="a login to the final image",
            timeout=90,
            retryable=DSM_NOT_YET,
            describe=lambda: container.logs(tail=30).decode(errors="replace"),
        )
        seconds = time.monotonic() - started
        with session:
            assert session.nfs_get()["enable_nfs"] is True
            assert session.smb_get()["enable_samba"] is True
            assert any(t["name"] == "vdsm-ci" for t in session.target_list())
        # the guest's state came back with the snapshot: wizard done, nothing to set up again
        state = requests.get(f"http://127.0.0.1:{port}/sim/state", timeout=5).json()
        assert state["configured"] is True and state["admin_user"] == SIM["user"], state
        assert state["screens_pending"] == [] and len(state["screens_done"]) == 9, state
        # No session the build opened works on the image: the browser's and the Web API's
        # sessions ended before the final checkpoint, so every session id in the run folder (storage
        # state, traces, notebooks) is refused by a fresh container (DSM: 119 invalid session).
        run_dir = first_build["out"] / first_build["result"]["run_id"]
        sids = session_ids(run_dir)
        assert sids, "no session id in the run folder: the check below would prove nothing"
        for sid in sorted(sids):
            answer = requests.get(
                f"http://127.0.0.1:{port}/webapi/entry.cgi",
                params={"api": "SYNO.Core.System", "version": "1", "method": "info", "_sid": sid},
                cookies={"id": sid},
                timeout=10,
            ).json()
            assert answer["success"] is False, f"a session of the build works: {answer}"
            assert answer["error"]["code"] in (106, 119), answer
        browser_state = run_dir / "browser-state.json"
        assert browser_state.stat().st_mode & 0o777 == 0o600
        assert json.loads(browser_state.read_text())["cookies"] == []
        print(f"{len(sids)} session id(s) of the build refused by the final image")
        _load(port)
        print(f"final image: API login after {seconds:.1f} s")
        # NAT as on virtual-dsm: no dsm.url after a restore, nothing on the container's
        # 127.0.0.1:5000, and the health check still reaches DSM (at the guest's address).
        assert container.exec_run(["test", "-e", "/run/shm/dsm.url"]).exit_code == 1
        local = container.exec_run(["curl", "-s", "-m", "5", "http://127.0.0.1:5000/"])
        assert local.exit_code == 7, local

        def health_verdict() -> str:
            container.reload()
            health: str = container.attrs["State"]["Health"]["Status"]
            if health == "starting":
                raise NotReady("the health check is still starting")
            return health

        health = poll(
            health_verdict,
            what="the health check's verdict",
            timeout=90,
            interval=1,
            describe=lambda: str(container.attrs["State"]["Health"]),
        )
        assert health == "healthy", container.attrs["State"]["Health"]
    finally:
        container.remove(force=True, v=True)


def _libiscsi_size(size: int, block: int = 512) -> str:
    """The size ``iscsi-ls -s`` prints for a LUN of ``size`` bytes: READ CAPACITY(10)'s last
    LBA times the block size, divided by 1024 while above 1024 (libiscsi 1.19.0,
    utils/iscsi-ls.c ``list_luns``)."""
    value, unit = (size // block - 1) * block, 0
    while unit < 4 and value > 1024:
        value, unit = value // 1024, unit + 1
    return f"{value}{' KMGT'[unit].strip()}"


def _stock(argv: list[str], password: str | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin", **({"PASSWD": password} if password else {})}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"{argv[0]}: {done.stdout}{done.stderr}"
    return done.stdout


def test_final_image_serves_its_share_and_lun_to_stock_clients(
    first_build: dict, client: docker.DockerClient, tmp_path: Path
) -> None:
    """Through the published ports of a restored final image, what a user types: smbclient
    lists the share (with the file the services stage wrote before the final checkpoint) and copies
    a file in; nfs-ls lists both over NFSv4; iscsi-ls lists the target and its LUN with the
    configured size. iscsi-ls logs in where discovery points, DSM's own address behind the
    NAT (virtual-dsm v7.41 src/network.sh, VM_NET_IP 20.20.20.21), so the host routes that
    address through the container (vdsmlib.docker.route)."""
    result = first_build["result"]
    params = load_params(result["dsm_version"])
    share = params.services.shares[0]
    lun = params.services.iscsi.lun if params.services.iscsi else None
    assert lun is not None, "the simulator's params configure a LUN"
    container = client.containers.run(
        result["image"],
        detach=True,
        ports={f"{p}/tcp": ("127.0.0.1", None) for p in (5000, *SERVICE_PORTS.values())},
        labels=L.owner_labels("test", result["run_id"]),
        devices=["/dev/net/tun:/dev/net/tun:rwm"],
        cap_add=["NET_ADMIN"],
    )
    try:
        container.reload()
        port = {
            int(k.split("/")[0]): int(v[0]["HostPort"])
            for k, v in container.attrs["NetworkSettings"]["Ports"].items()
            if v
        }
        api = f"http://127.0.0.1:{port[5000]}"
        DsmLoginReady(api, SIM["user"], SIM["password"], timeout=90).wait(
            describe=lambda: container.logs(tail=30).decode(errors="replace")
        )
        mine = tmp_path / "from-the-host.txt"
        mine.write_text("copied in with smbclient\n")
        listing = _stock(
            ["smbclient", f"//127.0.0.1/{share.name}", "-p", str(port[445]), "-U", SIM["user"],
             "-m", "SMB3", "-c", f'put "{mine}" "{mine.name}"; ls'],
            SIM["password"],
        )  # fmt: skip
        assert BUILD_FILE in listing and mine.name in listing, listing
        nfs = f"nfs://127.0.0.1{share.path}?version=4&nfsport={port[2049]}&uid=0&gid=0"
        names = _stock(["nfs-ls", nfs])
        assert BUILD_FILE in names and mine.name in names, names
        back = tmp_path / "back.txt"
        _stock(["nfs-cp", nfs.replace("?", f"/{BUILD_FILE}?", 1), str(back)])
        assert back.read_bytes() == BUILD_FILE_DATA
        iqn = dsm_iqn(params.admin.server_name, params.services.iscsi.target.name)  # type: ignore[union-attr]
        with guest_route(params.base.guest_address, container_address(container), helper=container):
            luns = _stock(["iscsi-ls", "-s", f"iscsi://127.0.0.1:{port[3260]}/"])
        print(luns)
        assert f"Target:{iqn} Portal:{params.base.guest_address}:3260,1" in luns, luns
        assert f"Lun:1    Type:DIRECT_ACCESS (Size:{_libiscsi_size(lun.size_bytes)})" in luns
    finally:
        container.remove(force=True, v=True)


def _load(port: int, requests_total: int = 200, connections: int = 20) -> None:
    """200 requests over 20 connections at once, Web API info and login/logout mixed: every one
    answered, and well (the times are printed; how fast is a benchmark's question, and on a
    loaded 2-core machine the p99 of `query=ALL`, 580 APIs, is seconds)."""
    base = f"http://127.0.0.1:{port}/webapi"

    def one(i: int, http: requests.Session) -> float:
        started = time.monotonic()
        if i % 4 == 3:
            login = http.get(
                f"{base}/entry.cgi",
                params={
                    "api": "SYNO.API.Auth",
                    "version": "3",
                    "method": "login",
                    "account": SIM["user"],
                    "passwd": SIM["password"],
                    "format": "sid",
                },
                timeout=30,
            ).json()
            assert login["success"], login
            out = http.get(
                f"{base}/entry.cgi",
                params={
                    "api": "SYNO.API.Auth",
                    "version": "3",
                    "method": "logout",
                    "_sid": login["data"]["sid"],
                },
                timeout=30,
            ).json()
            assert out["success"], out
        else:
            info = http.get(
                f"{base}/query.cgi",
                params={"api": "SYNO.API.Info", "version": "1", "method": "query", "query": "ALL"},
                timeout=30,
            ).json()
            assert info["success"], info
        return time.monotonic() - started

    def worker(k: int) -> list[float]:
        with requests.Session() as http:
            return [one(i, http) for i in range(k, requests_total, connections)]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(connections) as pool:
        times = sorted(t for ts in pool.map(worker, range(connections)) for t in ts)
    assert len(times) == requests_total
    p99 = times[int(len(times) * 0.99) - 1]
    print(
        f"load: {requests_total} requests over {connections} connections: median "
        f"{times[len(times) // 2]:.2f} s, p99 {p99:.2f} s, max {times[-1]:.2f} s"
    )


def test_a_stage_notebook_reruns_on_a_finished_run_cell_by_cell(
    first_build: dict, builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`papermill notebooks/post-wizard.ipynb OUT -p run_dir RUN` on a green build's run (a
    copy, so the build's own evidence stays): start-ready restored, admin replayed, each step
    its own cell, a screenshot beside a clip per screen, no checkpoint, its VM removed."""
    monkeypatch.delenv(L.PROCESS_ENV, raising=False)  # a person's kernel, not a build's
    source = first_build["out"] / first_build["result"]["run_id"]
    run = tmp_path / "run"
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("notebooks", "report.html"))
    before = {i.id for i in find_images(builds.client, {L.KIND: "checkpoint"})}
    executed = tmp_path / "post-wizard.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "post-wizard.ipynb"),
        str(executed),
        parameters={"run_dir": str(run)},
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
    )
    cells = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]

    def plain(cell: nbformat.NotebookNode) -> str:
        return "".join(
            o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs
        )

    restored = next(c for c in cells if "nb.restore_vm()" in c.source)
    assert "replayed admin from start-ready" in plain(restored), plain(restored)
    opened = next(c for c in cells if "nb.open_browser()" in c.source)
    assert "the page now" in plain(opened)
    closed = next(c for c in cells if "nb.close_browser()" in c.source)
    screens = [
        o for o in closed.outputs if o.get("data", {}).get("text/plain", "").startswith("screen ")
    ]
    handled = [s for s in first_build["result"]["screens"] if s["stage"] == "post-wizard"]
    assert len(screens) == len([s for s in handled if not s["skipped"]]) > 0
    for output in screens:
        page = output["data"]["text/html"]
        assert "display:flex" in page and "<img " in page and "<video " in page, page[:300]
    assert "ran: post-wizard: screens" in plain(cells[-1])
    assert json.loads((run / "stages" / "post-wizard.json").read_text())["screens"]
    # no checkpoint taken, and the VM it restored is gone
    assert {i.id for i in find_images(builds.client, {L.KIND: "checkpoint"})} <= before
    assert builds.containers_of(first_build["result"]["run_id"]) == []


def test_noop_rebuild_runs_nothing(first_build: dict, builds: Builds) -> None:
    record = builds.build(executor="inline")
    assert [s.status for s in record.stages] == ["skipped"] * 7, record.stages
    # the build's process label is gone with it: a kernel this process starts later (a stage
    # notebook on its own, JupyterLab) is not in a build and must not reattach to its VM
    assert L.PROCESS_ENV not in os.environ
    assert record.image == first_build["result"]["image"]
    assert record.image_id == first_build["result"]["image_id"]
    # out/latest stays on a run that did something; the no-op names the run that made the image
    assert record.image_run_id == first_build["result"]["run_id"]
    assert (builds.out_dir / "latest").resolve().name != record.run_id
    assert (builds.out_dir / record.run_id / "report.html").is_file()


def test_make_build_noop_is_recorded_without_a_kernel(
    first_build: dict, builds: Builds, tmp_path: Path
) -> None:
    """`make build` with nothing to do: the library's check records the no-op as the notebook
    does (image_run_id, out/latest unmoved) and papermill never starts."""
    out = builds.out_dir
    latest = (out / "latest").resolve()
    executed = tmp_path / "build-sim.ipynb"
    command = [sys.executable, "-m", "vdsmlib.cli.make", str(ROOT / "notebooks" / "build.ipynb"),
               str(executed), "-p", "dsm_version", "sim", "-p", "out_dir", str(out),
               "-p", "image_repository", TEST_REPOSITORY]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    record_path = Path(next(x for x in lines if x.startswith("record: ")).split(" ", 1)[1])
    record = load_record(record_path)
    builds.run_ids.append(record.run_id)
    assert not executed.exists(), "papermill ran"
    assert "no kernel started" in lines[0] and lines[-1] == first_build["result"]["image"]
    assert record.status == "ok" and record.image == first_build["result"]["image"]
    assert [s.status for s in record.stages] == ["skipped"] * 7
    assert record.image_run_id == first_build["result"]["run_id"]
    assert (out / "latest").resolve() == latest
    assert (record_path.parent / "report.html").is_file()
    assert "Traceback" not in done.stdout + done.stderr
    print(f"no-op make build: {seconds:.2f} s")


def test_noop_check_with_work_to_do_leaves_no_run_folder(first_build: dict, builds: Builds) -> None:
    build = builds.start(no_cache=True)
    assert asyncio.run(build.run_if_noop()) is None
    assert not build.run_dir.exists()
    assert builds.containers_of(build.run_id) == []


def test_copies_of_the_final_image_are_never_promoted(
    first_build: dict, builds: Builds, client: docker.DockerClient, tmp_path: Path
) -> None:
    """A `docker commit` copy (one more file) and an image built `FROM` the final image carry
    its labels, fingerprint too; one of them is even given the moving tag. The next build
    trusts neither: a no-op on the smoke-tested image (by ID), the tags back on it, the copies
    named in its plan; `vdsm publish` refuses a copy."""
    from vdsmlib.pipeline.publish import PublishError, publish

    first = first_build["result"]
    final = client.images.get(first["image_id"])
    pinned, moving = first["tags"]
    copies = f"{TEST_REPOSITORY}-copy"
    container = client.containers.create(final.id, entrypoint=["true"])
    try:
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            info = tarfile.TarInfo("extra-file")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"extra"))
        assert container.put_archive("/", data.getvalue())
        committed = container.commit(repository=copies, tag="commit")
    finally:
        container.remove(force=True)
    dockerfile = io.BytesIO(f"FROM {pinned}\nENV USER_LAYER=1\n".encode())
    derived, _ = client.images.build(fileobj=dockerfile, tag=f"{copies}:from", rm=True)
    repo, _, name = moving.rpartition(":")
    committed.tag(repo, name)  # a user's `docker tag` onto our moving tag
    try:
        for copy in (committed, derived):
            assert copy.id != final.id
            assert copy.labels[L.FINGERPRINT] == final.labels[L.FINGERPRINT] != ""
            assert copy.labels[L.KIND] == "final"
        record = builds.build(executor="inline")
        assert record.status == "ok"
        assert [s.status for s in record.stages] == ["skipped"] * 7, record.plan
        assert record.image_id == final.id and record.tags == [pinned, moving]
        assert "ignored 2 image(s)" in record.plan, record.plan
        for copy in (committed, derived):
            assert str(copy.id).split(":")[1][:12] in record.plan, record.plan
        assert client.images.get(pinned).id == final.id
        assert client.images.get(moving).id == final.id
        # `vdsm publish` of a copy, named by a record as the last build's image
        named = tmp_path / "result.json"
        named.write_text(
            json.dumps({"target": "sim", "image_id": committed.id, "tags": [f"{copies}:commit"]})
        )
        with pytest.raises(PublishError, match="passed no smoke test"):
            publish(client, "sim", "127.0.0.1:9/vdsm-ci-test/refused", record=named)
    finally:
        for image in client.images.list(name=copies):
            client.images.remove(image.id, force=True)


def test_a_no_cache_rebuild_keeps_the_pinned_tag_and_clean_reclaims_what_it_superseded(
    first_build: dict, builds: Builds, client: docker.DockerClient
) -> None:
    """A second `no_cache` build of the same fingerprint: the first pinned tag stays on the
    first image, the rebuild gets `<pinned>-2`, the moving tag moves. The first build's
    checkpoints lose their tags; `vdsm clean` removes every untagged image of this project,
    but not one that a running container uses."""
    from vdsmlib.docker.images import images_in_use
    from vdsmlib.pipeline.trust import smoke_passed

    first = first_build["result"]
    record = builds.build(no_cache=True, executor="inline")
    assert record.status == "ok"
    assert record.fingerprint == first["fingerprint"], (
        "the two builds had different fingerprints: the build base changed between them"
    )
    assert client.images.get(first["image"]).id == first["image_id"]
    assert re.fullmatch(re.escape(first["image"]) + r"-\d+", record.image or ""), record.image
    assert record.image_id != first["image_id"]
    assert client.images.get(record.tags[1]).id == record.image_id
    superseded = find_images(client, {L.KIND: "checkpoint", L.RUN_ID: first["run_id"]})
    assert superseded and not any(i.tags for i in superseded), superseded
    used, *others = superseded
    # a user's container (the image's ownership labels emptied: no build's leftover)
    mine = {L.OWNER: "", L.RUN_ID: "", L.PROCESS: "", "vdsm-ci-test": "clean"}
    holder = client.containers.run(used.id, entrypoint=["sleep", "600"], detach=True, labels=mine)
    try:
        dry = vdsm("clean", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        for image in others:
            assert re.search(rf"would remove image {image.id} \(\d+ MB\)", dry.stdout), dry.stdout
        assert f"kept image {used.id} (used by container {holder.short_id}" in dry.stdout
        done = vdsm("clean")
        assert done.returncode == 0, done.stderr
        ours = client.images.list(filters={"label": f"{L.OWNER}={L.OWNER_VALUE}"})
        finals = client.images.list(filters={"label": f"{L.KIND}=final"})
        left = {
            str(i.id)
            for i in [*ours, *finals]
            if not i.tags
            and not L.run_alive(i.labels)
            and (i.labels.get(L.KIND) != "final" or smoke_passed(str(i.id)))
        }
        # (on a shared engine another user's container may hold one too)
        in_use = images_in_use(client)
        assert str(used.id) in left and all(i in in_use for i in left), (left, done.stdout)
        everything = {str(x.id) for x in client.images.list(all=True)}
        assert not [i for i in others if str(i.id) in everything], done.stdout
    finally:
        holder.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(used.id)


def test_sigkill_during_flatten_leaves_no_image_and_a_record_naming_stage_and_signal(
    first_build: dict, client: docker.DockerClient, tmp_path: Path
) -> None:
    """SIGKILL to `vdsm build`'s process group while flatten builds the image (resumed from
    the first build's final checkpoint, in a repository of its own): once its janitor has
    finished, no image of that run is left, and the record names the stage and the signal;
    stages never reached say so; report.html is there, `.reserve` is not."""
    import signal

    out = tmp_path / "out"
    repository = f"{TEST_REPOSITORY}-killed"
    proc = subprocess.Popen(
        [*VDSM, "build", "sim", "--executor", "inline", "--out", str(out),
         "-p", f"image_repository={repository}"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != L.PROCESS_ENV},
             "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a CI job's
    )  # fmt: skip
    run_id = ""
    try:

        def flatten_building() -> str:
            for run in out.glob("*/result.json") if out.exists() else []:
                flatten = next(s for s in load_record(run).stages if s.name == "flatten")
                labels = {"label": f"{L.RUN_ID}={run.parent.name}"}
                made = client.images.list(all=True, filters=labels)
                if flatten.status == "running" and any(
                    i.labels.get(L.KIND) != "checkpoint" for i in made
                ):
                    return run.parent.name
            raise NotReady("flatten has made no image yet")

        run_id = poll(
            flatten_building,
            what="flatten to build its first step",
            retryable=(ValueError, StopIteration),
            timeout=900,
            interval=0.5,
            alive=lambda: None if proc.poll() is None else f"the build exited {proc.returncode}",
        )
        os.killpg(proc.pid, signal.SIGKILL)
        record_file = out / run_id / "result.json"

        def janitor_done() -> None:
            if load_record(record_file).status == "running":
                raise NotReady("the record still says running")

        # the build is not reaped until the janitor has read how it ended
        poll(janitor_done, what="the janitor's record", timeout=180, retryable=(ValueError,))
        leftovers = client.images.list(all=True, filters={"label": f"{L.RUN_ID}={run_id}"})
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)
        for image in client.images.list(name=repository):
            client.images.remove(image.id, force=True)
    assert leftovers == [], leftovers
    record = load_record(out / run_id / "result.json")
    statuses = {s.name: s.status for s in record.stages}
    assert statuses["flatten"] == "interrupted", record.stages
    assert statuses["smoke"] == "not-reached", record.stages
    flatten = next(s for s in record.stages if s.name == "flatten")
    assert flatten.detail == "the build's process was killed by SIGKILL", flatten.detail
    assert record.status == "failed"
    assert record.error is not None and record.error.startswith("stage flatten: "), record.error
    assert "killed by SIGKILL" in record.error
    assert (out / run_id / "report.html").is_file()
    assert not (out / run_id / ".reserve").exists()


def test_post_wizard_profile_edit_resumes_from_start_ready(
    first_build: dict, builds: Builds, tmp_path: Path
) -> None:
    # an edited copy of params/ (the repository's files stay as they are)
    params = tmp_path / "params"
    shutil.copytree(ROOT / "params", params)
    profile = params / "profiles" / "dsm-7.2.2" / "post-wizard.yaml"
    profile.write_text(
        profile.read_text() + "\n# edited: the next build resumes from start-ready\n"
    )
    # what `make build` prints before it starts a kernel: the plan the build then makes
    ahead = builds.start(params_dir=params).work_to_do()
    assert ahead and ahead.startswith("checkpoint start-ready matches the current"), ahead
    record = builds.build(executor="inline", params_dir=params)
    statuses = {s.name: s.status for s in record.stages}
    boot = next(s for s in record.stages if s.name == "boot")
    assert (boot.status, boot.detail) == ("resumed", "from checkpoint start-ready"), boot
    assert statuses["admin"] == statuses["post-wizard"] == statuses["services"] == "ran"
    assert statuses["flatten"] == statuses["smoke"] == "ran"
    assert record.image != first_build["result"]["image"]
    assert record.restore_to_ready_seconds is not None


def test_a_checkpoint_copy_with_a_truncated_disk_is_refused_and_the_build_falls_back(
    first_build: dict, builds: Builds, client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy of the final checkpoint carrying its labels, its boot disk truncated (`docker
    commit`), tagged over the checkpoint's tag: the next build (a repository of its own, so it
    would resume from final) refuses it before restoring anything, says why in one line (which
    check, which disk), untags it, falls back to start-ready in the same run and passes.

    start-ready is a copy too, recorded as committed (a build's own checkpoint, rotted after
    its commit: its state file cut to half, its header and the disks sound), so it passes the
    checks and QEMU's incoming migration fails: marked bad with one line, the build falls back
    again, to the first build's start-ready (held by a tag of its own), and passes. The tags are
    put back."""
    from vdsmlib.checkpoints.check import CommittedCheckpoint, record_committed
    from vdsmlib.checkpoints.fingerprints import compute
    from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY
    from vdsmlib.pipeline.base import look_up_base
    from vdsmlib.pipeline.stage import checkpoint_records

    repository = f"{TEST_REPOSITORY}-truncated"
    params = load_params("sim", {"image_repository": repository})
    base = look_up_base(client, params)
    assert not isinstance(base, str), base
    fingerprints = compute(params, base)
    originals, tags = {}, {}
    for name in ("final", "start-ready"):
        labels = {L.KIND: "checkpoint", L.STAGE: name, L.FINGERPRINT: fingerprints[name]}
        tagged = [image for image in find_images(client, labels) if image.tags]
        assert tagged, f"no tagged {name} checkpoint with the current fingerprint"
        originals[name] = tagged[0]
        tags[name] = next(t for t in tagged[0].tags if t.startswith(CHECKPOINT_REPOSITORY + ":"))
    storage = '"${STORAGE:-/storage}"'
    truncate = f'f=$(ls {storage}/*.boot.img); truncate -s $(($(stat -c %s "$f") / 2)) "$f"'
    # the state file cut to half: the stream ends in the middle of the guest's RAM
    rot = f'f={storage}/start-ready.state; truncate -s $(($(stat -c %s "$f") / 2)) "$f"'

    # the first build's final checkpoint, untagged by its copy, held by a container meanwhile
    # (a `vdsm clean` beside this session reclaims untagged checkpoints, but none in use); its
    # start-ready by a tag of its own: the checkpoint the second fallback finds
    hold = client.containers.create(originals["final"].id, entrypoint=["true"])
    held = f"{TEST_REPOSITORY}-held:start-ready-checkpoint"
    originals["start-ready"].tag(*held.rsplit(":", 1))
    copies = {}
    try:
        copies["final"] = _checkpoint_copy(client, originals["final"], tags["final"], truncate)
        copies["start-ready"] = _checkpoint_copy(
            client, originals["start-ready"], tags["start-ready"], rot
        )
        record_committed(
            checkpoint_records(),
            CommittedCheckpoint(
                str(copies["start-ready"].id),
                "start-ready",
                fingerprints["start-ready"],
                "test-rotted-after-commit",
                tags["start-ready"],
            ),
        )
        caplog.set_level("INFO", logger="vdsmlib.checkpoints.check")
        record = builds.build(overrides={"image_repository": repository}, executor="inline")
        assert record.status == "ok", record.error
        bad = [r.getMessage() for r in caplog.records if "marked bad" in r.getMessage()]
        assert len(bad) == 2 and not any("\n" in line for line in bad), bad
        line = bad[0]
        tag = tags["final"]
        assert f"checkpoint final {tag} " in line and "not one a build committed" in line, line
        assert re.search(r"disk \S+\.boot\.img: qemu-img check found \d+ corruption", line), line
        assert f"untagged {tag}" in line, line
        seconds = float(re.search(r"refused after ([\d.]+) s", line).group(1))  # type: ignore[union-attr]
        print(f"truncated copy refused in {seconds:.1f} s: {line}")
        rotted = bad[1]
        assert f"checkpoint start-ready {tags['start-ready']} " in rotted, rotted
        assert "did not restore: " in rotted, rotted
        # QEMU's own line (virtual-dsm from 7.63), or that QEMU ended during the load (before)
        assert "load of migration failed" in rotted or "before it had loaded" in rotted, rotted
        print(f"rotted copy: {rotted}")
        for copy in copies.values():
            assert get_image(client, copy.id) is None  # gone with its tag
        statuses = {s.name: s.status for s in record.stages}
        assert statuses["boot"] == "resumed", record.stages
        assert statuses["admin"] == statuses["services"] == statuses["smoke"] == "ran"
        details = {s.name: s.detail for s in record.stages}
        assert details["services"].startswith(
            "would have resumed from checkpoint final; fell back to checkpoint start-ready: "
        ), details["services"]
        assert details["admin"].startswith(
            f"would have resumed from checkpoint start-ready; fell back to checkpoint start-ready "
            f"{held}: "
        ), details["admin"]
        # the plan tells both: the refusal, then the failed restore
        first_plan, _, then = record.plan.partition("; then: ")
        assert f"fell back to checkpoint start-ready: checkpoint final {tag} " in first_plan
        assert f"checkpoint start-ready {held} " in then and "did not restore" in then, then
    finally:
        for name, original in originals.items():  # the checkpoints' tags back on the first's
            original.tag(*tags[name].rsplit(":", 1))
        client.images.remove(held)
        hold.remove(force=True)
        for copy in copies.values():
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(copy.id)
        for image in client.images.list(name=repository):
            client.images.remove(image.id, force=True)


def _checkpoint_copy(
    client: docker.DockerClient, checkpoint: docker.models.images.Image, tag: str, script: str
) -> docker.models.images.Image:
    """`script` run in a container of ``checkpoint``, committed (its labels, entry point and
    command kept) as ``tag``."""
    container = client.containers.create(checkpoint.id, entrypoint=["sh", "-c", script])
    try:
        container.start()
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs()
        config = checkpoint.attrs["Config"]
        repository, _, name = tag.rpartition(":")
        copy = container.commit(
            repository=repository,
            tag=name,
            conf={"Entrypoint": config["Entrypoint"], "Cmd": config["Cmd"]},
        )
    finally:
        container.remove(force=True)
    assert copy.id != checkpoint.id and client.images.get(tag).id == copy.id
    for label in (L.KIND, L.STAGE, L.FINGERPRINT):
        assert copy.labels[label] == checkpoint.labels[label]
    return copy


def test_qemu_killed_mid_stage_fails_cleanly_and_next_build_resumes(
    first_build: dict, builds: Builds, client: docker.DockerClient
) -> None:
    knobs = {"sim_knobs": {"SIM_SAVE_MS": "20000"}}  # the admin form takes 20 s to save
    build = builds.start(overrides=knobs, executor="inline")

    async def run_and_kill() -> None:
        task = asyncio.create_task(build.run())
        filters = {"label": [f"{L.RUN_ID}={build.run_id}", f"{L.STAGE}=admin"]}

        async def admin_saving(budget: float) -> str:
            running = await asyncio.to_thread(client.containers.list, filters=filters)
            if not (running and _admin_form_submitted(build.run_dir)):
                raise NotReady("the admin stage's VM is not saving the admin form yet")
            return str(running[0].id)

        try:
            stage_vm = await wait_for(
                admin_saving,
                what="the admin stage to save the admin form",
                timeout=900,
                alive=lambda: "the build ended" if task.done() else None,
            )
        except ReadinessAborted:
            await task  # the build ended first: its own error, if it failed
            raise
        _kill_qemu(client, stage_vm)
        await task

    with pytest.raises(StageError) as err:
        asyncio.run(run_and_kill())
    assert err.value.stage in ("admin", "post-wizard")
    record = load_record(build.run_dir / "result.json")
    failed = [s for s in record.stages if s.status == "failed"]
    assert [s.name for s in failed] == [err.value.stage]
    # nothing tagged for the failed stage, nothing left running
    assert not find_images(client, {L.RUN_ID: build.run_id, L.STAGE: "final"})
    assert builds.containers_of(build.run_id) == []
    # the next build resumes from the start-ready checkpoint (the failed build tagged nothing
    # new: its stage failed after start-ready); it also takes
    # the NFS path through Control Panel (nfs_via: ui), as DSM's own users click it
    again = builds.build(overrides={**knobs, "nfs_via": "ui"}, executor="inline")
    statuses = {s.name: s.status for s in again.stages}
    boot = next(s for s in again.stages if s.name == "boot")
    assert (boot.status, boot.detail) == ("resumed", "from checkpoint start-ready"), boot
    assert statuses["admin"] == "ran" and statuses["smoke"] == "ran"
    assert any("services-ui" in Path(p).name for p in again.screenshots), again.screenshots


def _kill_qemu(client: docker.DockerClient, container_id: str) -> None:
    """SIGKILL the container's QEMU, as an OOM killer or a crash would (through Docker: QEMU is
    root's, and the suite runs as a user in the `docker` group)."""
    VmContainer.attach(client, container_id).kill_process("qemu-system")


def _admin_form_submitted(run_dir: Path) -> bool:
    """The admin stage has screenshotted the account form, so it is saving now."""
    return any((run_dir / "evidence").glob("admin-*admin-account*.png"))


def test_a_snapshot_of_the_other_accelerator_is_refused(
    first_build: dict, client: docker.DockerClient
) -> None:
    """A TCG checkpoint started as a KVM VM would not load: refused before anything starts."""
    from vdsmlib.checkpoints.vm import StageVm
    from vdsmlib.docker.engine import DockerError
    from vdsmlib.params import load_params

    # a start-ready checkpoint of the first build's target, the newest: the first build's own,
    # or, once a no_cache rebuild superseded it and `vdsm clean` reclaimed it (an earlier test
    # does both), the rebuild's
    of_target = {
        L.KIND: "checkpoint",
        L.STAGE: "start-ready",
        L.TARGET: first_build["result"]["target"],
    }
    tagged = [image for image in find_images(client, of_target) if image.tags]
    assert tagged, "no tagged start-ready checkpoint of the first build's target"
    checkpoint = tagged[0]
    recorded = checkpoint.labels[L.ACCELERATOR]
    other = "kvm" if recorded == "tcg" else "tcg"
    refused = {"label": [f"{L.RUN_ID}=test-refuse"]}
    with pytest.raises(DockerError, match=f"saved under {recorded}.*does not load under {other}"):
        StageVm.start(
            client,
            checkpoint.tags[0],
            load_params("sim"),
            accelerator=other,
            run_id="test-refuse",
            stage="admin",
            restore="start-ready",
        )
    assert client.containers.list(all=True, filters=refused) == []


def test_parallel_builds_of_one_image_serialise(
    first_build: dict, builds: Builds, client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Two builds of the same image at once (`make build` twice): one waits on the lock, then
    finds the work done; each run has one record; every image a record names is tagged."""
    from concurrent.futures import ThreadPoolExecutor

    # a repository of its own: a new final image to make (flatten and smoke from the final
    # checkpoint of the first build), not a no-op
    repository = f"{TEST_REPOSITORY}-twin"
    caplog.set_level("INFO", logger="vdsmlib.pipeline.run")
    try:
        with ThreadPoolExecutor(2) as pool:
            build = lambda _: builds.build(overrides={"image_repository": repository})  # noqa: E731
            records = list(pool.map(build, range(2)))
        _check_parallel_records(records, builds, client, caplog)
    finally:
        for image in client.images.list(name=repository):
            client.images.remove(image.id, force=True)


def _check_parallel_records(
    records: list, builds: Builds, client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert [r.status for r in records] == ["ok", "ok"]
    assert "waiting for another build of the same image" in caplog.text
    for record in records:
        results = list((builds.out_dir / record.run_id).glob("result.json"))
        assert len(results) == 1
        assert load_record(results[0]).image_id == record.image_id
        # the image a record names exists and keeps its pinned tag (the moving tag follows the
        # newest build)
        image = client.images.get(record.image_id)
        assert record.image == record.tags[0] and record.image in image.tags, image.tags
        dangling = client.images.list(
            filters={"dangling": True, "label": f"{L.RUN_ID}={record.run_id}"}
        )
        assert dangling == [], dangling
    # The second found the first's work: nothing ran twice. (On an engine shared with other
    # sessions, a simulator image rebuilt between the two builds changes the fingerprint.)
    assert records[0].fingerprint == records[1].fingerprint, (
        "the two builds had different fingerprints: the build base changed between them"
    )
    ran = [r for r in records if any(s.status == "ran" for s in r.stages[1:])]
    assert len(ran) == 1, [[s.status for s in r.stages] for r in records]
    assert records[0].image_id == records[1].image_id
    assert set(records[0].tags) <= set(client.images.get(records[0].image_id).tags)


async def test_soak_restores_the_final_image_every_time(
    first_build: dict, client: docker.DockerClient
) -> None:
    """`make soak` in short (N=3): every restore of the final image logs in."""
    from vdsmlib.cli.soak import soak
    from vdsmlib.params import load_params

    result = first_build["result"]
    report = await soak(client, result["image"], load_params("sim"), 3, run_id=result["run_id"])
    assert len(report.seconds) == 3 and all(s > 0 for s in report.seconds)
    print(report.summary())
