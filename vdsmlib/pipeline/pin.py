"""What pinning a vdsm/virtual-dsm release writes into a target's params (``vdsm pin``).

The digest alone is not enough: releases move the script that attaches the disks and the
address of the guest, and the build base and the final image must follow. Per release
(``docs/virtual-dsm-releases.md`` cites each file and tag):

* ``base.patch_file``: ``/run/disk.sh`` up to and including 7.62, ``/run/prepare.sh`` from
  7.63 on (the build base patches the two lines that attach the boot and system disks there).
* ``env.VM_NET_IP``: from 7.62 on the NAT guest address is derived from the container's own
  address (qemus/qemu ``src/network.sh`` natGuestIP), so a snapshot restored in another Docker
  network would keep an address that no longer routes; pinning ``VM_NET_IP`` to
  ``base.guest_address`` keeps the guest where the snapshot left it, in the build and in the
  final image (every ``env`` variable goes into both), and where the health check asks.

Example::

    text = pinned_params(path.read_text(), "vdsm/virtual-dsm:7.65", "sha256:...", "20.20.20.21")
"""

from __future__ import annotations

import re

from vdsmlib.errors import VdsmError

__all__ = [
    "GUEST_ADDRESS_DERIVED",
    "PATCH_FILE_MOVED",
    "patch_file_for",
    "pinned_params",
    "release_of",
]

PATCH_FILE_MOVED = (7, 63)
"""The first release that attaches the boot and system disks in ``/run/prepare.sh``."""

GUEST_ADDRESS_DERIVED = (7, 62)
"""The first release whose NAT guest address follows the container's address."""


def release_of(image: str) -> tuple[int, int] | None:
    """``(7, 65)`` for ``vdsm/virtual-dsm:7.65`` (a digest may follow); None for other tags."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    if "/" in tag or not name:
        return None
    match = re.fullmatch(r"v?(\d+)\.(\d+)", tag)
    return (int(match.group(1)), int(match.group(2))) if match else None


def patch_file_for(release: tuple[int, int]) -> str:
    """The script of ``release`` that attaches the boot and system disks."""
    return "/run/prepare.sh" if release >= PATCH_FILE_MOVED else "/run/disk.sh"


def _replace_line(text: str, key: str, value: str, where: str) -> str:
    new, count = re.subn(rf"(?m)^(  {key}: ).*$", lambda m: m.group(1) + value, text, count=1)
    if count != 1:
        raise VdsmError(f"{where}: no `base.{key}` line to pin; add `  {key}:` under `base:`")
    return new


def _set_env(text: str, name: str, value: str, where: str) -> str:
    line = f'  {name}: "{value}"'
    if re.search(rf"(?m)^  {name}:.*$", text):
        return re.sub(rf"(?m)^  {name}:.*$", lambda _: line, text, count=1)
    new, count = re.subn(r"(?m)^env: *\{\} *$", lambda _: f"env:\n{line}", text, count=1)
    if count:
        return new
    new, count = re.subn(r"(?m)^env: *$", lambda m: f"{m.group(0)}\n{line}", text, count=1)
    if count:
        return new
    if re.search(r"(?m)^env:", text):
        raise VdsmError(f"{where}: `env:` is not a block mapping; write it as `env:` + lines")
    return text.rstrip("\n") + f"\nenv:\n{line}\n"


def pinned_params(text: str, ref: str, digest: str, guest_address: str, *, where: str = "") -> str:
    """The params file ``text`` with ``base.image`` pinned to ``ref@digest`` and the settings
    its release needs (see the module docstring); comments and the rest are kept.

    ``ref`` must name a virtual-dsm release tag (``vdsm/virtual-dsm:7.65``); a registry path
    in front of it (a mirror) is kept.
    """
    where = where or "params"
    release = release_of(ref)
    if release is None:
        raise VdsmError(
            f"{where}: cannot tell the virtual-dsm release of {ref!r}: pin a release tag such as "
            "vdsm/virtual-dsm:7.65"
        )
    text = _replace_line(text, "image", f"{ref.split('@', 1)[0]}@{digest}", where)
    text = _replace_line(text, "patch_file", patch_file_for(release), where)
    if release >= GUEST_ADDRESS_DERIVED:
        text = _set_env(text, "VM_NET_IP", guest_address, where)
    return text
