"""The facts about DSM that the simulated DSM renders and enforces: :mod:`vdsmlib.dsm`.

The simulator must not carry its own idea of DSM: what the client checks (password policy,
screen selectors and texts, the API catalogue, error codes) is what the guest implements. On the
host the guest imports the installed ``vdsmlib.dsm``; in the guest image the image build copies
the same files (``vdsmlib/__init__.py``, ``vdsmlib/errors.py``, ``vdsmlib/dsm/``: standard
library only) beside the guest package, so the same import runs the same source there.
``tests/sim/test_guest_facts.py`` runs the guest that way, with nothing else of vdsmlib.
"""

from __future__ import annotations

from vdsmlib.dsm import errors, iscsi, policy, screens, webapi

__all__ = ["errors", "iscsi", "policy", "screens", "webapi"]
