"""A consumer's test file that only uses the ``dsm`` fixtures passes against our final image.

It is run as a consumer runs it: a separate ``pytest --dsm-image IMAGE examples/consumer``, with
the plugin found through its entry point (nothing imported by hand), once with this checkout's
vdsmlib (what ``pip install vdsmlib`` brings) and once from the light install alone (the
pytest-vdsm wheel in a fresh virtualenv, tests/package/light_venv.py). ``DsmContainer`` waits
through the library's login wait (vdsmlib.webapi.readiness): a refused login fails at once, a
timeout keeps the container's log tail.

The final image is the session's (tests/integration/conftest.py ``builds``: a build with the
same parameters as an earlier one in the session runs no stage).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest

from tests.integration.conftest import Builds, free_port
from tests.package.light_venv import light_venv
from vdsmlib.testing import DsmContainer, DsmLoginWaitStrategy, DsmNotReady
from vdsmlib.webapi.errors import WebApiError
from vdsmlib.webapi.readiness import FATAL_LOGIN_CODES

ROOT = Path(__file__).parents[2]
CONSUMER = ROOT / "examples" / "consumer"


@pytest.fixture(scope="module")
def final_image(builds: Builds) -> str:
    record = builds.build("sim")
    assert record.status == "ok" and record.image
    return record.image


@pytest.mark.docker
@pytest.mark.browser
@pytest.mark.slow
def test_consumer_tests_pass_with_dsm_image(final_image: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--rootdir",
            str(CONSUMER),
            "--dsm-image",
            final_image,
            "-v",
            str(CONSUMER),
        ],
        cwd=CONSUMER,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout


@pytest.mark.docker
@pytest.mark.browser
@pytest.mark.slow
def test_consumer_tests_pass_from_the_light_install(
    final_image: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    light = light_venv(tmp_path_factory)
    # the light virtualenv's own pytest, run outside the checkout: vdsmlib comes from the wheel
    result = light.run(
        [
            str(light.bin("pytest")),
            "-p",
            "no:cacheprovider",
            "--dsm-image",
            final_image,
            "-v",
            str(CONSUMER),
        ],
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout
    # the plugin is the light distribution's (pytest shows pytest-vdsm as "vdsm", vdsmlib as
    # "vdsmlib")
    assert re.search(r"^plugins: .*\bvdsm-\d", result.stdout, re.M), result.stdout[:2000]


@pytest.mark.docker
@pytest.mark.browser
@pytest.mark.slow
def test_a_wrong_password_fails_at_once(final_image: str, client: docker.DockerClient) -> None:
    started = time.monotonic()
    with (
        pytest.raises(DsmNotReady) as exc,
        DsmContainer(final_image, password="Wr0ng-Passw0rd", startup_timeout=300),
    ):
        pass
    waited = time.monotonic() - started
    message = str(exc.value)
    assert "refused the login of 'vdsm'" in message and "--dsm-password" in message, message
    assert isinstance(exc.value.__cause__, WebApiError) and exc.value.__cause__.code == 400
    assert "Wr0ng-Passw0rd" not in message
    # the restore and one login, not the 300 s timeout
    assert waited < 90, f"a refused login took {waited:.0f} s to fail"
    assert not client.containers.list(all=True, filters={"ancestor": final_image})


class _Unreachable(DsmContainer):
    """The final image, its login waited for at a port where nothing listens."""

    dead_port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dead_port}"


@pytest.mark.docker
@pytest.mark.browser
@pytest.mark.slow
def test_a_login_timeout_says_why_with_the_containers_log_tail(final_image: str) -> None:
    started = time.monotonic()
    with pytest.raises(DsmNotReady) as exc, _Unreachable(final_image, startup_timeout=3):
        pass
    message = str(exc.value)
    assert time.monotonic() - started < 60
    assert "did not accept a login of 'vdsm' within 3 s" in message, message
    assert "(last: " in message and "no answer yet" not in message, message
    tail = message.split("last log lines:\n", 1)[1]
    assert tail.strip() and not tail.startswith("(no logs"), message


# -- the wait strategy's login wait, against a DSM that asks for a 2FA code (no Docker) ----------


class _TwoFactorDsm(BaseHTTPRequestHandler):
    """Lists SYNO.API.Auth; every login fails with 404 (2-factor authentication failed)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/webapi/query.cgi"):
            auth = {"path": "entry.cgi", "minVersion": 1, "maxVersion": 7}
            body: dict[str, object] = {"success": True, "data": {"SYNO.API.Auth": auth}}
        else:
            body = {"success": False, "error": {"code": 404}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def two_factor_dsm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TwoFactorDsm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_2fa_login_ends_the_wait_at_once(two_factor_dsm: str) -> None:
    ready = DsmLoginWaitStrategy().readiness(two_factor_dsm, "vdsm", "secret")
    assert ready.fatal_codes == FATAL_LOGIN_CODES and 404 in ready.fatal_codes
    assert ready.timeout == 300
    started = time.monotonic()
    with pytest.raises(WebApiError) as exc:
        ready.wait()
    assert exc.value.code == 404
    assert time.monotonic() - started < 5


@pytest.mark.docker
@pytest.mark.browser
@pytest.mark.slow
def test_without_an_image_the_fixture_says_what_to_pass(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(dsm):\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "pass --dsm-image IMAGE or set VDSM_DSM_IMAGE" in result.stdout
