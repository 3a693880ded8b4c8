"""Drive DSM's web UI from profiles: the first-run wizard, post-wizard screens, Control Panel.

Profiles (``params/profiles/<profile>/<stage>.yaml``) describe screens as data; the
:class:`Wizard` engine handles whichever known screen shows; :class:`BrowserSession` runs
Debian Chromium with one recorded context per stage.

Example::

    async with BrowserSession(evidence) as session:
        profile = load_stage_profile("dsm-7.2.2", "admin")
        report = await run_stage(session, profile, values, "http://127.0.0.1:5000/")
"""

from vdsmlib.wizard.browser import (
    CHROMIUM_ARGS,
    BrowserSession,
    Credentials,
    LoginSelectors,
    StageArtifacts,
    ensure_playwright_ffmpeg,
    login_if_needed,
    run_stage,
)
from vdsmlib.wizard.clips import ClipFormat, ClipWindow, clip_screens
from vdsmlib.wizard.engine import Wizard
from vdsmlib.wizard.errors import (
    BrowserError,
    ProfileError,
    RequiredScreenMissing,
    ScreenError,
    UnknownScreenError,
    WizardError,
)
from vdsmlib.wizard.profile import (
    STAGES,
    Screen,
    StageProfile,
    default_profiles_dir,
    load_stage_profile,
    profile_files,
)
from vdsmlib.wizard.report import LocatorReport, ScreenRecord, StageReport
from vdsmlib.wizard.secrets import is_secret_name, mask_text

__all__ = [
    "CHROMIUM_ARGS",
    "STAGES",
    "BrowserError",
    "BrowserSession",
    "ClipFormat",
    "ClipWindow",
    "Credentials",
    "LocatorReport",
    "LoginSelectors",
    "ProfileError",
    "RequiredScreenMissing",
    "Screen",
    "ScreenError",
    "ScreenRecord",
    "StageArtifacts",
    "StageProfile",
    "StageReport",
    "UnknownScreenError",
    "Wizard",
    "WizardError",
    "clip_screens",
    "default_profiles_dir",
    "ensure_playwright_ffmpeg",
    "is_secret_name",
    "load_stage_profile",
    "login_if_needed",
    "mask_text",
    "profile_files",
    "run_stage",
]
