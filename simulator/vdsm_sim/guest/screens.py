"""The simulator's post-wizard screens as one table: adding a screen is adding one entry.

Each :class:`SimScreen` says everything the simulator needs: its id, how it is drawn (``kind``),
its title, its body, its buttons and what each action does, and whether a seeded scenario may
drop it. Titles, selectors and button ids come from :mod:`vdsmlib.dsm.screens` (DSM's facts);
bodies are the simulator's own filler text. :mod:`.views` renders an entry by its kind,
:mod:`.server` accepts exactly the actions of its buttons, :mod:`.scenario` orders the entries.

Example: a new promotion is one entry in :data:`SCREENS` (plus its DSM facts)::

    SimScreen(id="photos-promo", kind="promotion", title="...", body="...",
              buttons=(Button("syno-promotion-photos-btn-skip", "No, thanks", "skip"),),
              close_act="close", droppable=True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from .facts import screens as dsm

if TYPE_CHECKING:
    from .state import SimState

__all__ = [
    "EXTRA_DIALOG_ID",
    "SCREENS",
    "UPDATE_OPTIONS",
    "Button",
    "SimScreen",
    "screen_for",
]

#: How an entry is drawn (see :data:`vdsmlib.dsm.screens.ScreenKind`).
Kind = Literal["wizard-step", "promotion", "message-box", "notification-panel"]

#: Identifier of the unexpected dialog of ``SIM_EXTRA_DIALOG``.
EXTRA_DIALOG_ID = "extra-dialog"

#: The radio options of "Select an update option": key -> label.
UPDATE_OPTIONS = (
    ("auto", "Install the latest DSM and package updates automatically"),
    ("important", "Install important DSM and package updates automatically (recommended)"),
    ("notify", "Notify me and let me decide whether to install the new update"),
)

#: ``effect(state, body)`` runs when a screen's action completes it (besides completing it).
Effect = Callable[["SimState", dict[str, object]], None]


@dataclass(frozen=True)
class Button:
    """A button of a screen: its ``syno-id``, its text, and the action it posts (``act``)."""

    syno_id: str
    text: str
    act: str
    main: bool = True


@dataclass(frozen=True)
class SimScreen:
    """One post-wizard screen of the simulator; every action of it completes it."""

    id: str
    kind: Kind
    title: str
    #: Inner HTML under the title (already escaped), or a function of the state giving it.
    body: str | Callable[[SimState], str]
    buttons: tuple[Button, ...]
    #: The act the window's close tool (promotions, notification panel) posts, if it has one.
    close_act: str | None = None
    #: May a seeded scenario (``SIM_SCREEN_SEED``) leave it out?
    droppable: bool = False
    #: What an action does beyond completing the screen.
    effect: Effect | None = None
    #: ``syno-id`` of the window (message boxes), and a header title for it.
    window_syno_id: str = ""
    header_title: str = ""
    #: Where :attr:`title` goes: DSM's title element for this screen.
    title_selector: str = ""

    @property
    def acts(self) -> frozenset[str]:
        """The actions the server accepts for this screen."""
        acts = {button.act for button in self.buttons}
        if self.close_act:
            acts.add(self.close_act)
        return frozenset(acts)

    @property
    def over_desktop(self) -> bool:
        """Drawn over the desktop (everything but the welcome wizard's full-page steps)."""
        return self.kind != "wizard-step"

    def render_body(self, state: SimState) -> str:
        return self.body(state) if callable(self.body) else self.body


def _desc(text: str) -> str:
    return f'<div class="welcome-step-desc">{text}</div>'


def _update_radios(state: SimState) -> str:
    radios = []
    for key, label in UPDATE_OPTIONS:
        on = key == state.update_option
        radios.append(
            f'<div class="v-radio-wrapper{" v-radio-wrapper-checked" if on else ""}" '
            f'syno-id="welcome-app-select-update-radio-{key}" data-sim-radio="{key}" '
            f'role="radio" aria-checked="{"true" if on else "false"}">'
            '<span class="v-radio"><input type="radio" class="v-radio-input" '
            f'name="update_option" value="{key}"{" checked" if on else ""}>'
            '<span class="v-radio-inner"></span></span>'
            f'<span class="v-radio-label">{label}</span></div>'
        )
    return '<div class="v-radio-group">' + "".join(radios) + "</div>"


def _choose_update_option(state: SimState, body: dict[str, object]) -> None:
    option = str(body.get("option", ""))
    if option in {key for key, _ in UPDATE_OPTIONS}:
        state.update_option = option


def _fact(screen_id: str) -> dsm.PostWizardScreen:
    return dsm.POST_WIZARD[screen_id]


def _dismiss(screen_id: str, act: str, *, main: bool = True) -> tuple[Button, ...]:
    fact = _fact(screen_id)
    assert fact.action_syno_id is not None
    return (Button(fact.action_syno_id, fact.action_text, act, main=main),)


def _entry(
    screen_id: str,
    *,
    body: str | Callable[[SimState], str],
    buttons: tuple[Button, ...],
    close_act: str | None = None,
    droppable: bool = False,
    effect: Effect | None = None,
    window_syno_id: str = "",
) -> SimScreen:
    """An entry for one of DSM's screens: kind, title and title element from the facts."""
    fact = _fact(screen_id)
    return SimScreen(
        id=screen_id,
        kind=fact.kind,
        title=fact.title,
        title_selector=fact.title_selector,
        body=body,
        buttons=buttons,
        close_act=close_act,
        droppable=droppable,
        effect=effect,
        window_syno_id=window_syno_id,
    )


_TABLE: tuple[SimScreen, ...] = (
    _entry(
        "update-options",
        body=_update_radios,
        buttons=_dismiss("update-options", "next"),
        effect=_choose_update_option,
    ),
    _entry(
        "synology-account",
        body=_desc(
            "Sign in with your Synology Account to access online services such as "
            "QuickConnect and DDNS."
        ),
        buttons=_dismiss("synology-account", "skip", main=False),
        droppable=True,
    ),
    _entry(
        "user-experience",
        body=_desc(
            "Help improve Synology products by sending device analytics. No personal data is "
            "collected."
        )
        + '<label class="v-checkbox-wrapper"><input type="checkbox" class="v-checkbox-input" '
        'name="device_analytics"><span class="v-checkbox-label">Allow Synology to collect '
        "device analytics</span></label>",
        buttons=_dismiss("user-experience", "submit"),
        droppable=True,
    ),
    _entry(
        "file-access-promo",
        body="Install Synology Drive Server to access and share files from any device.",
        buttons=_dismiss("file-access-promo", "skip", main=False),
        close_act="close",
        droppable=True,
    ),
    _entry(
        "2fa-promo",
        body="Add a second sign-in step to protect your account.",
        buttons=_dismiss("2fa-promo", "skip", main=False),
        close_act="close",
    ),
    _entry(
        "amfa-promo",
        body="Require an extra verification when a sign-in looks suspicious.",
        buttons=_dismiss("amfa-promo", "skip", main=False),
        close_act="close",
        droppable=True,
    ),
    _entry(
        "mfa-warning",
        body="",
        buttons=_dismiss("mfa-warning", "ok"),
        window_syno_id="promotion-app-window-msgbox",
    ),
    _entry(
        "notification-setup",
        body="Set up email, SMS or push notifications to be informed about system events.",
        buttons=(),
        close_act="close",
    ),
    _entry(
        "notification-reminder",
        body="",
        buttons=_dismiss("notification-reminder", "ok"),
        window_syno_id="window-manager-msg-box",
    ),
    # Not DSM's: the dialog of SIM_EXTRA_DIALOG, with a syno-id no profile knows. Its text is
    # the knob's (see screen_for()).
    SimScreen(
        id=EXTRA_DIALOG_ID,
        kind="message-box",
        title="",
        title_selector="div.dialog-content",
        body="",
        buttons=(Button("sim-extra-dialog-fbar-ok", "OK", "ok"),),
        window_syno_id="sim-extra-dialog",
    ),
)

#: Every screen the simulator can show, by id; DSM's in the order DSM usually shows them.
SCREENS: dict[str, SimScreen] = {screen.id: screen for screen in _TABLE}
assert tuple(s for s in SCREENS if s != EXTRA_DIALOG_ID) == dsm.SCREEN_IDS, "facts and table differ"


def screen_for(state: SimState, screen_id: str) -> SimScreen:
    """The table entry of ``screen_id``, with the scenario's text where the knob sets it."""
    screen = SCREENS[screen_id]
    if screen_id == EXTRA_DIALOG_ID:
        text = state.scenario.extra_dialog
        return replace(screen, title=text, header_title=text)
    return screen
