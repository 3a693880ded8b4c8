"""Shared test data: the simulator's post-wizard screen ids -> the DSM 7.2.2 profile's ids.

The simulator names screens by DSM's facts (``vdsmlib.dsm.screens``, the ``SIM_SCREENS`` ids);
the profile names them for screenshots and reports. The table pairs them by the title DSM
shows, so a profile that lost one of DSM's screens fails here, at import.
"""

from vdsmlib.dsm.screens import POST_WIZARD
from vdsmlib.wizard import load_stage_profile

_PROFILE = load_stage_profile("dsm-7.2.2", "post-wizard")

SIM_TO_PROFILE = {
    fact.id: next(s.id for s in _PROFILE.screens if s.identify.text == fact.title)
    for fact in POST_WIZARD.values()
}
