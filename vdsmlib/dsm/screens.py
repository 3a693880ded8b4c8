"""DSM 7.2.2's first-run screens as data: ids, selectors, texts, and the rules of their order.

From shared/facts dsm-ui-7.2.2.md. Sections 1-2 (welcome page, admin form) come first and in
that order. The post-wizard screens of section 3 follow in an order that varies, and any of them
may be absent; two data-flow rules hold: the MFA warning answers a 2FA or Adaptive MFA
promotion (so it comes right after the first of them), and the notification reminder answers
the closed Notification Setup panel (so it comes right after it). Section 4 is the desktop.

The ids are the simulator's screen names (``SIM_SCREENS``); wizard profiles may name screens as
they like. Selectors and texts are DSM's, verbatim.

Example::

    >>> POST_WIZARD["2fa-promo"].title
    'Enable 2-Factor Authentication (2FA)'
    >>> [s.id for s in POST_WIZARD.values() if s.kind == "wizard-step"]
    ['update-options', 'synology-account', 'user-experience']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ADMIN_FORM",
    "DESKTOP",
    "FOLLOWS",
    "POST_WIZARD",
    "SCREEN_IDS",
    "WELCOME",
    "DesktopFacts",
    "PostWizardScreen",
    "ScreenKind",
]

#: How a screen is drawn: a full-page step of the welcome wizard, a promotion window or a
#: message box over the desktop (both modal, over a mask), or a notification panel (no mask).
ScreenKind = Literal["wizard-step", "promotion", "message-box", "notification-panel"]


@dataclass(frozen=True)
class PostWizardScreen:
    """A post-wizard screen (facts section 3): how to recognise it and how to dismiss it."""

    id: str
    kind: ScreenKind
    #: Selector of the element that carries :attr:`title`.
    title_selector: str
    title: str
    #: The element to click to dismiss it, and its text.
    action_selector: str
    action_text: str
    #: ``syno-id`` of the dismissing button (None for the notification panel's close tool).
    action_syno_id: str | None


def _button(syno_id: str) -> str:
    return f"button[syno-id='{syno_id}']"


#: The welcome page (facts section 1): DSM is ready for setup when the button exists.
WELCOME = {
    "button": "button.welcome-page-btn",
    "title": "Welcome to DSM 7",
    "description": "Next-generation data management begins here",
}

#: The admin account form (facts section 2).
ADMIN_FORM = {
    "title_selector": "div.welcome-step-title",
    "title": "Get started with your VirtualDSM",
    "server_name": "#syno-0",
    "user": "#syno-1",
    "password": "#syno-2",
    "confirm": "#syno-3",
    "submit": "button.v-btn-main",
    "errors": ".v-tooltip-error, .error-msg",
}

_SCREENS = (
    PostWizardScreen(
        "update-options",
        "wizard-step",
        "div.welcome-step-title",
        "Select an update option",
        "button.v-btn-main",
        "Next",
        "welcome-app-wizard-fbar-next",
    ),
    PostWizardScreen(
        "synology-account",
        "wizard-step",
        "div.welcome-step-title",
        "Create a Synology Account",
        _button("welcome-app-wizard-fbar-back"),
        "Skip",
        "welcome-app-wizard-fbar-back",
    ),
    PostWizardScreen(
        "user-experience",
        "wizard-step",
        "div.welcome-step-title",
        "Opt-in for a better user experience",
        _button("welcome-app-wizard-fbar-next"),
        "Submit",
        "welcome-app-wizard-fbar-next",
    ),
    PostWizardScreen(
        "file-access-promo",
        "promotion",
        "div.title",
        "Securely Access and Share Files From Anywhere",
        _button("syno-promotion-preinstall-btn-skip"),
        "No, thanks",
        "syno-promotion-preinstall-btn-skip",
    ),
    PostWizardScreen(
        "2fa-promo",
        "promotion",
        "div.title",
        "Enable 2-Factor Authentication (2FA)",
        _button("syno-promotion-ss-btn-skip"),
        "Skip",
        "syno-promotion-ss-btn-skip",
    ),
    PostWizardScreen(
        "amfa-promo",
        "promotion",
        "div.title",
        "Protect your account with Adaptive MFA",
        _button("syno-promotion-manually-amfa-btn-give-up"),
        "No, thanks",
        "syno-promotion-manually-amfa-btn-give-up",
    ),
    PostWizardScreen(
        "mfa-warning",
        "message-box",
        "div.dialog-content",
        "We strongly recommend enabling 2FA or Adaptive MFA",
        _button("promotion-app-window-msgbox-fbar-commit"),
        "OK",
        "promotion-app-window-msgbox-fbar-commit",
    ),
    PostWizardScreen(
        "notification-setup",
        "notification-panel",
        "div.v-notification-title",
        "Notification Setup",
        "i.close-btn.window-tool-close",
        "",
        None,
    ),
    PostWizardScreen(
        "notification-reminder",
        "message-box",
        "div.dialog-content",
        "You can enable notifications later",
        _button("window-manager-msg-box-fbar-commit"),
        "OK",
        "window-manager-msg-box-fbar-commit",
    ),
)

#: The post-wizard screens by id, in the order DSM usually shows them.
POST_WIZARD: dict[str, PostWizardScreen] = {screen.id: screen for screen in _SCREENS}
#: Their ids, in that order.
SCREEN_IDS: tuple[str, ...] = tuple(POST_WIZARD)

#: Data-flow rules: a screen -> the screens it answers; it shows only after one of them showed,
#: right after the first of them.
FOLLOWS: dict[str, tuple[str, ...]] = {
    "mfa-warning": ("2fa-promo", "amfa-promo"),
    "notification-reminder": ("notification-setup",),
}


@dataclass(frozen=True)
class DesktopFacts:
    """The desktop and Control Panel (facts section 4)."""

    #: Desktop shortcut titles; "Package Center" showing means the desktop is ready.
    item_title_selector: str = "div[elementtiming='desktop-item-title']"
    ready_title: str = "Package Center"
    #: Desktop shortcuts: application id -> title.
    items: tuple[tuple[str, str], ...] = (
        ("SYNO.SDS.PkgManApp.Instance", "Package Center"),
        ("SYNO.SDS.AdminCenter.Application", "Control Panel"),
        ("SYNO.SDS.App.FileStation3.Instance", "File Station"),
    )
    control_panel: str = "li[syno-id='SYNO.SDS.AdminCenter.Application'].icon-item"
    file_services: str = "div[fn='SYNO.SDS.AdminCenter.FileService.Main']"
    #: What makes a window modal: the mask DSM draws under it.
    modal_masks: tuple[str, ...] = (".v-window-container-mask", ".v-window-mask")


DESKTOP = DesktopFacts()
