"""Choose the QEMU accelerator by booting a guest, not by trusting ``/dev/kvm``.

On nested virtualisation ``/dev/kvm`` can exist while a Linux guest cannot boot under it
(emulation failures, hangs). The probe boots the simulator image's guest kernel under KVM
with ``vdsm.probe=1``; its ``/init`` prints ``VDSM-PROBE-OK`` on the serial console and
powers off. Anything else within the timeout means TCG::

    import docker
    from vdsmlib.qemu.accel import probe_accelerator

    result = probe_accelerator(docker.from_env(), "vdsm-ci/sim:latest")
    print(result.accelerator, result.reason)   # "tcg", "KVM cannot boot a Linux guest ..."
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import docker
import docker.errors

from vdsmlib.errors import VdsmError
from vdsmlib.readiness import NotReady, ReadinessTimeout, wait_for, wait_for_sync

__all__ = ["PROBE_MARKER", "AcceleratorProbeError", "ProbeResult", "probe_accelerator"]

log = logging.getLogger(__name__)

PROBE_MARKER = "VDSM-PROBE-OK"
"""What the guest prints on its serial console when it reached userland."""

_PROBE_ENTRYPOINT = ["/run/probe.sh"]
_POLL_INTERVAL = 0.2
_TCG_COST = "using TCG, about 10x slower"


class AcceleratorProbeError(VdsmError):
    """The probe container could not be run at all (engine down, image missing)."""


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of :func:`probe_accelerator`: ``accelerator`` is ``"kvm"`` or ``"tcg"``,
    ``reason`` one line saying why, ``seconds`` how long the probe took."""

    accelerator: Literal["kvm", "tcg"]
    reason: str
    seconds: float


def _tcg(reason: str, started: float) -> ProbeResult:
    result = ProbeResult("tcg", reason, time.monotonic() - started)
    # the caller says which accelerator the build uses (one line per build)
    log.debug("KVM probe: tcg (%s)", reason)
    return result


def _failure_reason(logs: str, exit_code: int | None, timeout: float) -> str:
    """Turn the probe's console and QEMU messages into one line."""
    lines = [line.strip() for line in logs.splitlines() if line.strip()]
    if "emulation failure" in logs or "KVM internal error" in logs:
        return f"KVM cannot boot a Linux guest here (emulation failure); {_TCG_COST}"
    if exit_code is None:
        return (
            f"KVM did not boot a Linux guest within {timeout:.0f} s "
            f"(last console line: {lines[-1] if lines else 'none'!r}); {_TCG_COST}"
        )
    evidence = lines[-1] if lines else "no output"
    return f"KVM probe: QEMU exited with code {exit_code} ({evidence}); {_TCG_COST}"


def probe_accelerator(
    client: docker.DockerClient,
    image_ref: str,
    *,
    timeout: float = 25.0,
    kvm_device: str = "/dev/kvm",
    labels: Mapping[str, str] | None = None,
) -> ProbeResult:
    """Return ``kvm`` if the image's guest kernel boots under KVM within ``timeout``, else ``tcg``.

    Without ``kvm_device`` on the host the answer is ``tcg`` at once. The probe container
    (``image_ref`` must be a simulator image, which carries ``/run/probe.sh``) is always removed.
    The container carries ``labels`` (the caller's ownership labels, so a cleanup finds it).
    Raises :class:`AcceleratorProbeError` when Docker cannot run the probe at all.
    """
    started = time.monotonic()
    if not os.path.exists(kvm_device):
        return _tcg(f"{kvm_device} does not exist; {_TCG_COST}", started)
    # No access check of this user's: Docker hands the device to the container, where QEMU
    # runs as root, so an ordinary user in the `docker` group gets KVM without the `kvm` group.

    container: Any = None
    try:
        try:
            container = client.containers.run(
                image_ref,
                entrypoint=_PROBE_ENTRYPOINT,
                devices=[f"{kvm_device}:/dev/kvm:rwm"],
                network_mode="none",
                detach=True,
                labels=dict(labels or {}),
            )
        except docker.errors.DockerException as err:
            raise AcceleratorProbeError(
                f"cannot start the KVM probe container from {image_ref}: {err}; "
                "build the simulator image first (vdsm sim build)"
            ) from err
        seen: dict[str, Any] = {"logs": "", "exit_code": None}

        async def booted(_budget: float) -> bool:
            """True when the guest printed the marker; NotReady while it may still come."""
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
            seen["logs"] = logs
            if PROBE_MARKER in logs:
                return True
            container.reload()
            if container.status in ("exited", "dead"):
                seen["exit_code"] = int(container.attrs["State"]["ExitCode"])
                seen["logs"] = container.logs(stdout=True, stderr=True).decode(errors="replace")
                return PROBE_MARKER in seen["logs"]
            raise NotReady("no probe marker yet")

        try:
            ok = wait_for_sync(
                lambda: wait_for(
                    booted,
                    what="the KVM probe guest",
                    timeout=max(timeout - (time.monotonic() - started), 0.1),
                    interval=_POLL_INTERVAL,
                ),
                "the KVM probe guest",
            )
        except ReadinessTimeout:
            ok = False
        if ok:
            seconds = time.monotonic() - started
            result = ProbeResult("kvm", "a Linux guest booted under KVM", seconds)
            log.debug("KVM probe: kvm (took %.1f s)", result.seconds)
            return result
        logs, exit_code = str(seen["logs"]), seen["exit_code"]
        log.debug("KVM probe output:\n%s", logs)
        return _tcg(_failure_reason(logs, exit_code, timeout), started)
    except docker.errors.DockerException as err:
        raise AcceleratorProbeError(f"the KVM probe container failed: {err}") from err
    finally:
        if container is not None:
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.DockerException as err:
                log.warning("could not remove KVM probe container %s: %s", container.id, err)
