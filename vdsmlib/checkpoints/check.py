"""What a checkpoint must pass before it is restored: the image a build committed, sound disks.

Labels are no proof: ``docker commit`` and ``FROM`` copy them into every derived image, so a
copy of a checkpoint (a truncated disk, an extra file) carries its kind, stage and fingerprint.
Before a build restores a checkpoint, :func:`check_checkpoint` asks two things:

1. **Is it the image a build committed?** The build that commits a checkpoint records it by
   image ID (:func:`record_committed`, ``<records>/<algorithm>-<hex>.json``: stage, fingerprint,
   run, tag). A copy has another ID and no record, and the layers of the checkpoint it copies
   (:func:`copy_of`). Records are per user: a checkpoint another user's build made on the same
   engine (or one older than the records) has no record here and is no copy, so its disks
   decide; one user's build never untags another's checkpoints. A checkpoint pulled from the
   registry cache is recorded when the pull is accepted (its image ID is the pushing build's:
   the ID is the digest of the image's configuration, which a push and a pull keep).
2. **Are its disks and state sound in the checkpoint format?** :data:`FORMAT` says how: a
   migration stream in a file beside disks without internal snapshots
   (:class:`MigrationFile`: every disk passes ``qemu-img check``, and ``/storage/<name>.state``
   exists and starts as a migration stream does). The image's own
   ``qemu-img`` runs in a short-lived container of the image (no network, removed at once), so
   no tool or root is needed on the host: an ordinary user in the ``docker`` group can run it.
   A format change swaps :data:`FORMAT` and nothing else here.

A checkpoint that fails either is marked bad (:func:`mark_bad`: its checkpoint tags removed,
one log line saying which check failed and on which disk); the build falls back to the
checkpoint before it, or a cold boot. Example::

    result = check_checkpoint(client, "vdsm-ci/checkpoint:sim-tcg-final-1a2b", "final",
                              records=Path("~/.cache/vdsm-ci/checkpoints").expanduser())
    if not result.ok:
        mark_bad(client, result)
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import docker
from docker.errors import DockerException

from vdsmlib.checkpoints.vm import CHECKPOINT_REPOSITORY
from vdsmlib.docker import labels as L
from vdsmlib.docker.images import builds_on, image_layers
from vdsmlib.errors import VdsmError
from vdsmlib.qemu.migration import STATE_MAGIC, STATE_SUFFIX, incoming_failure

__all__ = [
    "FORMAT",
    "CheckpointCheck",
    "CheckpointFormat",
    "CheckpointRestoreError",
    "CommittedCheckpoint",
    "DiskVerdict",
    "MigrationFile",
    "check_checkpoint",
    "clear_restore_failures",
    "committed",
    "mark_bad",
    "note_restore_failed",
    "record_committed",
    "restore_failures",
]

log = logging.getLogger(__name__)


class CheckpointRestoreError(VdsmError):
    """A checkpoint that passed its checks did not restore (QEMU's incoming migration failed)."""

    def __init__(self, checkpoint: str, image: str, reason: str):
        super().__init__(f"checkpoint {checkpoint} ({image}) did not restore: {reason}")
        self.checkpoint = checkpoint
        self.image = image
        self.reason = reason


#: in a run folder: checkpoint name -> why its restore failed (written by the stage that
#: restored it, perhaps in another process; read by the orchestrator, which falls back)
RESTORE_FAILED_FILE = "restore-failed.json"


def note_restore_failed(run_dir: Path, name: str, why: str) -> None:
    """The checkpoint ``name`` did not restore in this run (QEMU could not load its state)."""
    failures = {**restore_failures(run_dir), name: why}
    (run_dir / RESTORE_FAILED_FILE).write_text(json.dumps(failures, indent=2) + "\n")


def clear_restore_failures(run_dir: Path) -> None:
    """The failures noted are handled (the build fell back): a later stage failure is not one."""
    (run_dir / RESTORE_FAILED_FILE).unlink(missing_ok=True)


def restore_failures(run_dir: Path) -> dict[str, str]:
    """The checkpoints that did not restore in this run, and why."""
    try:
        data = json.loads((run_dir / RESTORE_FAILED_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


# -- records of committed checkpoints ---------------------------------------------------------


@dataclass
class CommittedCheckpoint:
    """What the build that committed (or pulled) a checkpoint image recorded about it."""

    image_id: str
    name: str
    fingerprint: str
    run_id: str
    tag: str
    #: ``committed``, or ``pulled <reference>`` for a checkpoint taken from the registry cache
    source: str = "committed"
    at: float = field(default_factory=time.time)


def _record_path(records: Path, image_id: str) -> Path:
    algorithm, _, digest = image_id.partition(":")
    if not digest or not digest.isalnum() or not algorithm.isalnum():
        raise ValueError(f"not an image ID: {image_id!r}")
    return records / f"{algorithm}-{digest}.json"


def record_committed(records: Path, record: CommittedCheckpoint) -> None:
    """Record that a build committed (or accepted the pull of) ``record.image_id``."""
    path = _record_path(records, record.image_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    os.replace(tmp, path)


def committed(records: Path, image_id: str) -> CommittedCheckpoint | None:
    """The record of the build that committed ``image_id``, or None (a copy, or unknown)."""
    try:
        data: dict[str, Any] = json.loads(_record_path(records, image_id).read_text())
        record = CommittedCheckpoint(**data)
    except (OSError, ValueError, TypeError):
        return None
    return record if record.image_id == image_id else None


# -- the checkpoint format ----------------------------------------------------------------------


@dataclass
class DiskVerdict:
    """What the format's check found: the problems (none: sound) and, when sound, a summary."""

    problems: list[str]
    summary: str = ""


class CheckpointFormat(Protocol):
    """How a checkpoint of one format is checked: a command run in a container of the image,
    and the judgement of its output (pure: a unit test gives it recorded output); and how a
    failed restore shows in the VM container's log."""

    name: str

    def command(self, snapshot: str) -> list[str]: ...

    def judge(self, output: str, snapshot: str) -> DiskVerdict: ...

    def restore_failure(self, log: str) -> str | None: ...


#: every disk in the storage folder (virtual-dsm v7.41 src/disk.sh: ``<name>.boot.img``,
#: ``.system.img``, ``data.<fmt>``), each's ``qemu-img info`` and ``qemu-img check``, JSON on
#: stdout, the first lines of stderr (without qemu-img's one line per leaked cluster); then
#: the checkpoint's state file ($1): its size and first bytes in hex
_CHECK_SCRIPT = r"""
dir="${STORAGE:-/storage}"
for f in "$dir"/*.img "$dir"/*.qcow2; do
  [ -f "$f" ] || continue
  echo "@@disk ${f##*/}"
  echo "@@info"
  qemu-img info --output=json "$f" 2>/tmp/.check-err
  echo "@@rc $?"
  grep -v '^Leaked cluster' /tmp/.check-err | head -n 5 | sed 's/^/@@err /'
  echo "@@check"
  qemu-img check --output=json "$f" 2>/tmp/.check-err
  echo "@@rc $?"
  grep -v '^Leaked cluster' /tmp/.check-err | head -n 5 | sed 's/^/@@err /'
done
state="$dir/$1"
if [ -f "$state" ]; then
  echo "@@state $(stat -c %s "$state") $(od -An -tx1 -N8 "$state" | tr -d ' \n')"
else
  echo "@@state missing"
fi
echo "@@end"
"""


@dataclass
class _Run:
    rc: int = -1
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any] | None:
        try:
            data = json.loads("\n".join(self.stdout))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def why(self) -> str:
        """The first line of stderr that says something (``ERROR ...`` first)."""
        errors = [line for line in self.stderr if line.startswith("ERROR")]
        lines = errors or [line for line in self.stderr if line.strip()] or self.stdout[:1]
        return lines[0].strip() if lines else f"exit status {self.rc}"


def _parse(output: str) -> tuple[dict[str, dict[str, _Run]], str | None, bool]:
    """Per disk, its ``info`` and ``check`` runs; the state file's line (``<size> <hex>`` or
    ``missing``, None if absent); and whether the script got to its end."""
    disks: dict[str, dict[str, _Run]] = {}
    current: _Run | None = None
    ended = False
    state: str | None = None
    for line in output.splitlines():
        if line.startswith("@@state "):
            state = line[len("@@state ") :].strip()
            current = None
        elif line.startswith("@@disk "):
            disk = disks.setdefault(line[len("@@disk ") :], {})
            current = None
        elif line in ("@@info", "@@check") and disks:
            current = disk[line[2:]] = _Run()
        elif line.startswith("@@rc ") and current is not None:
            value = line[len("@@rc ") :]
            current.rc = int(value) if value.lstrip("-").isdigit() else -1
        elif line.startswith("@@err ") and current is not None:
            current.stderr.append(line[len("@@err ") :])
        elif line == "@@end":
            ended = True
        elif current is not None and current.rc == -1:
            current.stdout.append(line)
    return disks, state, ended


class MigrationFile:
    """The checkpoint format: a migration stream in ``/storage/<name>.state`` beside disks
    without internal snapshots (:mod:`vdsmlib.qemu.migration`), restored with ``-incoming``.

    Sound when every disk is qcow2 (the build attaches them so), passes ``qemu-img check``
    (leaked clusters waste space and do no harm; corruptions, or a check that cannot complete,
    fail) and lists no internal snapshot (a disk restored from a state file must be as it was
    when the state was saved; an internal snapshot is a leftover of another format), and the
    state file exists, is larger than its header and starts as a QEMU migration stream does.
    """

    name = "migration stream in a file"

    def command(self, snapshot: str) -> list[str]:
        return ["sh", "-c", _CHECK_SCRIPT, "check", snapshot + STATE_SUFFIX]

    def judge(self, output: str, snapshot: str) -> DiskVerdict:
        disks, state, ended = _parse(output)
        if not ended:
            tail = output.strip().splitlines()[-1:] or ["no output"]
            return DiskVerdict([f"the disk check did not finish: {tail[0]}"])
        if not disks:
            return DiskVerdict(["no disk (*.img, *.qcow2) in the storage folder"])
        problems: list[str] = []
        for disk, runs in disks.items():
            info_run, check_run = runs.get("info", _Run()), runs.get("check", _Run())
            if info_run.rc == 127 or check_run.rc == 127:
                problems.append(f"qemu-img is not in the image ({info_run.why()})")
                break
            info = info_run.json()
            if info_run.rc != 0 or info is None:
                problems.append(f"disk {disk}: qemu-img info failed: {info_run.why()}")
                continue
            if info.get("format") != "qcow2":
                problems.append(
                    f"disk {disk}: {info.get('format')}, not qcow2 (the build attaches qcow2)"
                )
                continue
            problem = _check_problem(disk, check_run)
            if problem:
                problems.append(problem)
            names = [str(s.get("name", "")) for s in info.get("snapshots") or []]
            if names:
                listed = ", ".join(repr(n) for n in names)
                problems.append(
                    f"disk {disk}: lists internal snapshots ({listed}): not a disk of this format"
                )
        file = snapshot + STATE_SUFFIX
        size, _, head = (state or "").partition(" ")
        if state is None or state == "missing":
            problems.append(f"no state file {file} in the storage folder")
        elif not size.isdigit() or int(size) <= len(STATE_MAGIC):
            problems.append(f"state file {file}: {size or '?'} bytes, no VM state")
        elif head != STATE_MAGIC.hex():
            problems.append(
                f"state file {file}: starts {head or 'with nothing'}, not as a migration stream "
                f"({STATE_MAGIC.hex()})"
            )
        if problems:
            return DiskVerdict(problems)
        return DiskVerdict(
            [],
            f"{len(disks)} disks pass qemu-img check; VM state {int(size) / 1e6:.0f} MB in {file}",
        )

    def restore_failure(self, log: str) -> str | None:
        """The line of a VM container's ``log`` saying that QEMU could not load the state,
        or None (see :func:`vdsmlib.qemu.migration.incoming_failure`)."""
        return incoming_failure(log)


def _check_problem(disk: str, run: _Run) -> str:
    """What ``qemu-img check``'s exit status says (qemu-img(1): 0 sound, 1 not completed,
    2 corrupted, 3 leaked clusters only, 63 format without checks), or ""."""
    if run.rc in (0, 3):
        return ""
    result = run.json() or {}
    if run.rc == 2:
        count = result.get("corruptions", "?")
        return f"disk {disk}: qemu-img check found {count} corruption(s) ({run.why()})"
    if run.rc == 1:
        return f"disk {disk}: qemu-img check could not complete ({run.why()})"
    return f"disk {disk}: qemu-img check failed with status {run.rc} ({run.why()})"


#: the checkpoint format the build makes and checks, chosen by benchmarks/checkpoint_formats.py
#: (see benchmarks/README.md): its command and its judgement
FORMAT: CheckpointFormat = MigrationFile()


# -- the check --------------------------------------------------------------------------------


@dataclass
class CheckpointCheck:
    """The result of :func:`check_checkpoint`."""

    name: str
    image: str
    image_id: str
    problems: list[str]
    summary: str
    seconds: float
    record: CommittedCheckpoint | None = None
    #: the checkpoint passed its checks, then did not restore (``problems`` says why)
    restore_failed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """One line: what was checked and what it found."""
        short = self.image_id.split(":")[-1][:12]
        if self.ok:
            committer = (
                f"the image its build {self.record.run_id} committed; " if self.record else ""
            )
            return (
                f"checkpoint {self.name} {self.image} ({short}) checked in {self.seconds:.1f} s: "
                f"{committer}{self.summary}"
            )
        verdict = (
            "did not restore" if self.restore_failed else f"refused after {self.seconds:.1f} s"
        )
        return f"checkpoint {self.name} {self.image} ({short}) {verdict}: " + "; ".join(
            self.problems
        )


def check_checkpoint(
    client: docker.DockerClient,
    image: str,
    name: str,
    *,
    records: Path,
    run_id: str | None = None,
    fmt: CheckpointFormat = FORMAT,
) -> CheckpointCheck:
    """Check the checkpoint ``name`` in ``image`` (a tag) before it is restored.

    Both checks always run, so a refusal names everything found. ``run_id`` labels the
    short-lived container (a killed build's cleanup finds it).
    """
    started = time.monotonic()
    try:
        found = client.images.get(image)
    except DockerException as err:
        return CheckpointCheck(name, image, "", [f"cannot inspect it: {err}"], "", 0.0)
    image_id = str(found.id)
    problems: list[str] = []
    record = committed(records, image_id)
    fingerprint = (found.labels or {}).get(L.FINGERPRINT, "")
    unrecorded = ""
    if record is None:
        original = copy_of(client, found)
        if original:
            problems.append(
                f"image {_short(image_id)} is not one a build committed (no record by its image "
                f"ID in {records}): a copy of checkpoint {_short(original)} (its layers and "
                "more: docker commit or FROM)"
            )
        else:
            # records are per user: another user's build on this engine, or a checkpoint
            # made before the records, is no copy; its disks decide (it is not refused, so
            # one user's build never untags another's checkpoints)
            unrecorded = f"not recorded in {records} (another user's build, or older)"
    elif record.name != name or record.fingerprint != fingerprint:
        problems.append(
            f"its image was committed as checkpoint {record.name} with fingerprint "
            f"{record.fingerprint[:12]}, not {name} with {fingerprint[:12]}"
        )
    try:
        output = _run_in_image(client, image_id, fmt.command(name), run_id)
        verdict = fmt.judge(output, name)
    except DockerException as err:
        verdict = DiskVerdict([f"the disk check could not run in a container of it: {err}"])
    problems += verdict.problems
    seconds = time.monotonic() - started
    summary = f"{unrecorded}; {verdict.summary}" if unrecorded else verdict.summary
    return CheckpointCheck(name, image, image_id, problems, summary, seconds, record)


def _short(image_id: str) -> str:
    return image_id.split(":")[-1][:12]


def copy_of(client: docker.DockerClient, image: Any) -> str | None:
    """The ID of the nearest other checkpoint of the same stage whose layers ``image`` has,
    all of them first and more after (``docker commit`` of its container, or ``FROM`` it), or
    None.

    Only the same stage: a build's ``final`` is committed from a VM restored from its
    ``start-ready``, so it has start-ready's layers by design. Only more layers: an image with
    the same layers holds the same content (a commit without changes), and either of the two
    would otherwise be the other's copy.
    """
    labels = image.labels or {}
    stage = labels.get(L.STAGE)
    if not stage:
        return None
    filters = {"label": [f"{L.KIND}=checkpoint", f"{L.STAGE}={stage}"]}
    try:
        # all: the original a copy was committed from is its parent, which a plain listing
        # leaves out once its tag has moved to the copy
        others = client.images.list(all=True, filters=filters)
    except DockerException:
        return None
    size = len(image_layers(image))
    bases = [o for o in others if builds_on(image, o) and len(image_layers(o)) < size]
    if not bases:
        return None
    return str(max(bases, key=lambda o: len(image_layers(o))).id)


def _run_in_image(
    client: docker.DockerClient, image_id: str, command: list[str], run_id: str | None
) -> str:
    """``command`` in a container of the image, no network, removed at once; its stdout."""
    labels = L.owner_labels("checkpoint-check", run_id, **{L.FINGERPRINT: "", L.STAGE: ""})
    output = client.containers.run(
        image_id,
        entrypoint=command,
        network_mode="none",
        labels=labels,
        remove=True,
        stdout=True,
        stderr=False,
    )
    return output.decode(errors="replace") if isinstance(output, bytes) else str(output)


def mark_bad(client: docker.DockerClient, check: CheckpointCheck) -> list[str]:
    """Remove the checkpoint tags of a refused checkpoint (an image no tag names is never
    resumed), logging one line with why. Returns the tags removed."""
    removed: list[str] = []
    try:
        tags = list(client.images.get(check.image_id or check.image).tags)
    except DockerException:
        tags = [check.image]
    for tag in tags:
        if not tag.startswith(CHECKPOINT_REPOSITORY + ":"):
            continue
        try:
            # noprune: a copy's parent (the checkpoint it was made from, untagged when the copy
            # took its tag) is not the copy's to delete
            client.images.remove(tag, noprune=True)
            removed.append(tag)
        except DockerException as err:
            log.warning("checkpoint %s: could not untag %s: %s", check.name, tag, err)
    log.warning("%s; marked bad: untagged %s", check.line(), ", ".join(removed) or "nothing")
    return removed
