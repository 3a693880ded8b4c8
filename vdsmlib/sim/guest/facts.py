"""The facts about DSM that the simulated DSM renders and enforces: :mod:`vdsmlib.dsm`.

The simulator must not carry its own idea of DSM: what the client checks (password policy,
screen selectors and texts, the API catalogue, error codes) is what the guest implements. On the
host the guest runs inside ``vdsmlib`` and uses :mod:`vdsmlib.dsm` itself. In the guest image
only this package is copied (as top-level ``guest``, with no ``vdsmlib`` beside it); ``_dsm/``
holds symbolic links to ``vdsmlib/dsm``'s files, which the image build copies as files, so the
guest runs the same source. ``tests/sim/test_guest_facts.py`` runs the guest that way.
"""

from __future__ import annotations

try:
    from vdsmlib.dsm import errors, policy, screens, webapi
except ModuleNotFoundError as err:  # in the guest image: no vdsmlib
    if err.name not in ("vdsmlib", "vdsmlib.dsm"):
        raise
    from ._dsm import errors, policy, screens, webapi  # type: ignore[no-redef]

__all__ = ["errors", "policy", "screens", "webapi"]
