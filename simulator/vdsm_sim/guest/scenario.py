"""Scenario knobs of the simulated DSM, read once from environment variables at startup.

See the package docstring for the meaning of every variable.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .facts import screens as dsm
from .screens import EXTRA_DIALOG_ID, SCREENS

__all__ = [
    "DESKTOP_SCREENS",
    "EXTRA_DIALOG_ID",
    "SCREEN_IDS",
    "WIZARD_SCREENS",
    "Scenario",
    "ScenarioError",
    "order_screens",
]

#: The post-wizard screens of DSM 7.2.2, in the order DSM usually shows them.
SCREEN_IDS: tuple[str, ...] = dsm.SCREEN_IDS
#: Steps of the welcome wizard itself (full page, no desktop behind them).
WIZARD_SCREENS = frozenset(s.id for s in SCREENS.values() if not s.over_desktop)
#: Screens drawn over the desktop.
DESKTOP_SCREENS = frozenset(SCREEN_IDS) - WIZARD_SCREENS
# Screens a seeded scenario may drop (the rest always show).
_DROPPABLE = frozenset(s.id for s in SCREENS.values() if s.droppable)
# Screens that answer another one (DSM's data flow): they never show alone.
_FOLLOWERS = frozenset(dsm.FOLLOWS)


class ScenarioError(ValueError):
    """A scenario environment variable has a value the simulator cannot use."""


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError as err:
        raise ScenarioError(f"{name}={raw!r} is not a number") from err
    if value < 0:
        raise ScenarioError(f"{name}={raw!r} must not be negative")
    return value


def order_screens(screens: list[str], seed: int | None) -> list[str]:
    """The post-wizard screens in the order they will show.

    Without a seed, ``screens`` as given. With a seed, reproducibly: some optional screens are
    dropped, the welcome-wizard steps are shuffled among themselves and come first, the desktop
    screens are shuffled after them, and data-flow pairs stay sensible: ``mfa-warning`` only shows
    if a 2FA/Adaptive MFA promotion shows and then right after the first of them;
    ``notification-reminder`` only shows if ``notification-setup`` shows and then right after it.
    """
    if seed is None:
        return list(screens)
    rng = random.Random(seed)
    kept = [s for s in screens if not (s in _DROPPABLE and rng.random() < 0.4)]
    wizard = [s for s in kept if s in WIZARD_SCREENS]
    rng.shuffle(wizard)
    desktop = [s for s in kept if s in DESKTOP_SCREENS and s not in _FOLLOWERS]
    rng.shuffle(desktop)
    ordered = wizard + desktop
    for follower, answers in dsm.FOLLOWS.items():
        if follower not in kept:
            continue
        shown = [i for i, s in enumerate(ordered) if s in answers]
        if shown:
            ordered.insert(shown[0] + 1, follower)
    return ordered


@dataclass(frozen=True)
class Scenario:
    """The knobs, parsed."""

    install_delay: float = 0.0
    screens: tuple[str, ...] = SCREEN_IDS
    extra_dialog: str = ""
    toast: str = ""
    transition_ms: int = 0
    save_ms: int = 0
    require_synotoken: bool = False
    dsm_version: str = "DSM 7.2.2-72806"
    hostname: str = "VirtualDSM"
    #: Where File Station finds /volume1's shared folders (SIM_VOLUME_ROOT): the guest's
    #: /volume1, which SMB and NFS serve; a directory of the test's on the host.
    volume_root: str = "/volume1"

    @property
    def build_number(self) -> str:
        """The build number in ``dsm_version`` (``"72806"``), or ``"0"`` if it has none."""
        match = re.search(r"-(\d+)", self.dsm_version)
        return match.group(1) if match else "0"

    @property
    def product_version(self) -> str:
        """The dotted version in ``dsm_version`` (``"7.2.2"``)."""
        match = re.search(r"(\d+(?:\.\d+)+)", self.dsm_version)
        return match.group(1) if match else "7.2.2"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Scenario:
        """Parse the ``SIM_*`` variables of ``env``; raise :class:`ScenarioError` on bad ones."""
        raw_delay = env.get("SIM_INSTALL_DELAY", "").strip() or "0"
        try:
            install_delay = float(raw_delay)
        except ValueError as err:
            raise ScenarioError(f"SIM_INSTALL_DELAY={raw_delay!r} is not a number") from err
        if "SIM_SCREENS" in env:
            screens = [s.strip() for s in env["SIM_SCREENS"].split(",") if s.strip()]
        else:
            screens = list(SCREEN_IDS)
        unknown = [s for s in screens if s not in SCREEN_IDS]
        if unknown:
            raise ScenarioError(
                f"SIM_SCREENS names unknown screens {unknown}; known: {', '.join(SCREEN_IDS)}"
            )
        if len(set(screens)) != len(screens):
            raise ScenarioError(f"SIM_SCREENS names a screen twice: {screens}")
        seed_raw = env.get("SIM_SCREEN_SEED", "").strip()
        seed: int | None = None
        if seed_raw:
            try:
                seed = int(seed_raw)
            except ValueError as err:
                raise ScenarioError(f"SIM_SCREEN_SEED={seed_raw!r} is not an integer") from err
        ordered = order_screens(screens, seed)
        extra = env.get("SIM_EXTRA_DIALOG", "").strip()
        if extra:
            # The dialog pops up over the desktop: right after the welcome-wizard steps, or at a
            # seeded position among the desktop screens.
            first_desktop = sum(1 for s in ordered if s in WIZARD_SCREENS)
            position = first_desktop
            if seed is not None:
                position = random.Random(seed + 1).randint(first_desktop, len(ordered))
                # Never split a data-flow pair.
                while 0 < position < len(ordered) and ordered[position] in _FOLLOWERS:
                    position += 1
            ordered.insert(position, EXTRA_DIALOG_ID)
        hostname = env.get("SIM_HOSTNAME", "").strip() or "VirtualDSM"
        return cls(
            install_delay=max(0.0, install_delay),
            screens=tuple(ordered),
            extra_dialog=extra,
            toast=env.get("SIM_TOAST", "").strip(),
            transition_ms=_int_env(env, "SIM_TRANSITION_MS", 0),
            save_ms=_int_env(env, "SIM_SAVE_MS", 0),
            require_synotoken=env.get("SIM_REQUIRE_SYNOTOKEN", "").strip().lower()
            in ("1", "true", "yes", "on"),
            dsm_version=env.get("SIM_DSM_VERSION", "").strip() or "DSM 7.2.2-72806",
            hostname=hostname,
            volume_root=env.get("SIM_VOLUME_ROOT", "").strip() or "/volume1",
        )
