"""The root of every error vdsmlib raises.

::

    VdsmError
     +-- ParamsError            (vdsmlib.params: bad version, weak password, ...)
     +-- PreflightError         (vdsmlib.pipeline.preflight: Docker down, disk full, Chromium missing)
     +-- DockerError            (vdsmlib.docker: engine errors, container exited early)
     |    +-- DockerUnavailable (the engine cannot be reached)
     +-- QmpError               (vdsmlib.qemu: QMP connection and command failures)
     |    +-- SnapshotError     (savevm failed or did not read back)
     +-- QemuToolError          (vdsmlib.qemu.image: qemu-img / qemu-system missing or failing)
     +-- SimImageError          (the DSM simulator: building its image)
     +-- PluginError            (vdsmlib.pipeline.plugins: no plugin of that name registered)
     +-- ProjectError           (vdsmlib.project: params/notebooks/Dockerfiles not found)
     +-- ReadinessTimeout       (vdsmlib.readiness: a wait strategy ran out of time)
     |    +-- ReadinessAborted  (what was waited on died: container exited)
     +-- WebApiError            (vdsmlib.webapi: DSM Web API failures, with the DSM error code)
     |    +-- ServicesMismatch  (services read back differ from the desired state)
     +-- WizardError            (vdsmlib.wizard: unknown screen, required screen not seen, ...)
     |    +-- UnknownScreenError  (with screenshot, visible text, DOM excerpt, suggestion)
     +-- PatError               (vdsmlib.pat: download failures, size/checksum mismatch)
     +-- StageError             (vdsmlib.pipeline: a build stage failed; names the stage)
     +-- ProfileError etc.      (vdsmlib.wizard.errors)

Every message says what failed, with evidence (command, log tail, screenshot path, URL),
and what to do next. Third-party errors are wrapped with ``raise ... from err``;
``KeyboardInterrupt`` and ``asyncio.CancelledError`` are never wrapped.
"""

from __future__ import annotations

__all__ = ["VdsmError"]


class VdsmError(Exception):
    """Base class of all errors raised by vdsmlib."""
