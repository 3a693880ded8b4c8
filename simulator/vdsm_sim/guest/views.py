"""HTML of every screen of the simulated DSM, rendered on the server.

The markup is minimal but exact for the selectors and texts of shared/facts/dsm-ui-7.2.2.md;
``static/app.js`` only swaps these fragments in and wires their buttons to ``/sim/ui/*``.
Elements the automation keys on carry the facts' classes, ``syno-id``s and texts verbatim.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from . import facts
from .screens import SCREENS, Button, SimScreen, screen_for
from .state import Session, SimState

__all__ = ["View", "current_view", "page", "panel", "welcome_admin_form"]

View = dict[str, Any]

#: Texts of the screens, verbatim from the facts.
T_WELCOME = facts.screens.WELCOME["title"]
T_WELCOME_DESC = facts.screens.WELCOME["description"]
T_ADMIN_TITLE = facts.screens.ADMIN_FORM["title"]


def _e(text: str) -> str:
    return escape(text, quote=True)


def page(view: View, hostname: str) -> str:
    """The whole HTML document for ``GET /`` with ``view`` already rendered inside."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(hostname)} - Synology VirtualDSM</title>"
        '<link rel="stylesheet" href="/sim/static/style.css">'
        '<script src="/sim/static/app.js" defer></script>'
        "</head><body>"
        f'<div id="sim-root" data-view="{_e(view["view"])}" '
        f'data-screen="{_e(view.get("screen") or "")}">{view["html"]}</div>'
        "</body></html>\n"
    )


# -- before setup -----------------------------------------------------------------------------


def _installing() -> str:
    return (
        '<div class="sim-installing welcome-page-bg">'
        '<div class="sim-installing-card">'
        '<div class="sim-installing-title">Installing DSM</div>'
        '<div class="sim-installing-desc">Please wait while DSM is being installed. '
        "This page will refresh by itself.</div>"
        '<div class="sim-spinner"></div>'
        "</div></div>"
    )


def _welcome() -> str:
    return (
        '<div class="welcome-page welcome-page-bg">'
        '<div class="welcome-page-content">'
        '<div class="welcome-page-logo">Synology</div>'
        f'<div class="welcome-page-title">{_e(T_WELCOME)}</div>'
        f'<div class="welcome-page-desc">{_e(T_WELCOME_DESC)}</div>'
        '<button type="button" class="welcome-page-btn" data-sim-action="start">Start</button>'
        "</div></div>"
    )


def _field(index: int, name: str, label: str, kind: str, value: str = "") -> str:
    field_key = "password_confirm" if index == 3 else name
    return (
        f'<div class="v-form-item" data-sim-field="{field_key}">'
        f'<label class="v-form-item-label" for="syno-{index}">{_e(label)}</label>'
        '<div class="v-form-item-control">'
        f'<input id="syno-{index}" name="{name}" type="{kind}" class="v-input" '
        f'value="{_e(value)}" autocomplete="off" spellcheck="false">'
        "</div></div>"
    )


def welcome_admin_form(hostname: str) -> str:
    """The admin account form (section 2 of the facts)."""
    return (
        '<div class="welcome-app welcome-page-bg" data-sim-screen="admin-form">'
        '<div class="welcome-app-card">'
        f'<div class="welcome-step-title">{_e(T_ADMIN_TITLE)}</div>'
        '<div class="welcome-step-desc">Enter a server name and create an administrator '
        "account to manage your VirtualDSM.</div>"
        '<form class="v-form" autocomplete="off" onsubmit="return false">'
        + _field(0, "device_name", "Server name", "text", hostname)
        + _field(1, "nas_account", "Administrator account", "text")
        + _field(2, "password", "Password", "password")
        + _field(3, "password", "Confirm password", "password")
        + "</form>"
        '<div class="welcome-app-fbar">'
        '<button type="button" class="v-btn v-btn-main" data-sim-action="admin-submit">'
        "Next</button></div>"
        "</div></div>"
    )


# -- post-wizard screens: one renderer per kind of screens.SCREENS entry -----------------------


def _button(button: Button) -> str:
    kind = "v-btn-main" if button.main else "v-btn-sub"
    return (
        f'<button type="button" class="v-btn {kind}" syno-id="{button.syno_id}" '
        f'data-sim-action="screen" data-sim-act="{button.act}">{_e(button.text)}</button>'
    )


def _mask() -> str:
    return '<div class="v-window-container-mask v-window-mask"></div>'


def _wizard_step(screen: SimScreen, body: str) -> str:
    return (
        f'<div class="welcome-app welcome-page-bg" data-sim-screen="{screen.id}">'
        '<div class="welcome-app-card">'
        f'<div class="welcome-step-title">{_e(screen.title)}</div>'
        f'<div class="welcome-step-body">{body}</div>'
        f'<div class="welcome-app-fbar">{"".join(_button(b) for b in screen.buttons)}</div>'
        "</div></div>"
    )


def _close_tool(screen: SimScreen, classes: str) -> str:
    if not screen.close_act:
        return ""
    return f'<i class="{classes}" data-sim-action="screen" data-sim-act="{screen.close_act}"></i>'


def _promotion(screen: SimScreen, body: str) -> str:
    return (
        _mask() + '<div class="v-window syno-promotion-app" syno-id="promotion-app-window" '
        f'role="dialog" data-sim-screen="{screen.id}">'
        '<div class="v-window-header"><span class="v-window-header-title">Synology</span>'
        + _close_tool(screen, "v-close-btn x-tool-close")
        + "</div>"
        '<div class="v-window-body">'
        f'<div class="title">{_e(screen.title)}</div>'
        f'<div class="desc">{body}</div></div>'
        '<div class="v-window-fbar">' + "".join(_button(b) for b in screen.buttons) + "</div></div>"
    )


def _message_box(screen: SimScreen, body: str) -> str:
    header = (
        '<div class="v-window-header"><span class="v-window-header-title">'
        f"{_e(screen.header_title)}</span></div>"
        if screen.header_title
        else ""
    )
    return (
        _mask() + f'<div class="v-window v-message-box" syno-id="{screen.window_syno_id}" '
        f'role="dialog" data-sim-screen="{screen.id}">{header}'
        f'<div class="v-window-body"><div class="dialog-content">{_e(screen.title)}</div>'
        f"{body}</div>"
        '<div class="v-window-fbar">' + "".join(_button(b) for b in screen.buttons) + "</div></div>"
    )


def _notification_panel(screen: SimScreen, body: str) -> str:
    return (
        f'<div class="v-notification-panel" data-sim-screen="{screen.id}">'
        '<div class="v-notification-header">'
        f'<div class="v-notification-title">{_e(screen.title)}</div>'
        + _close_tool(screen, "close-btn window-tool-close")
        + "</div>"
        f'<div class="v-notification-body">{body}</div></div>'
    )


_RENDERERS: dict[str, Callable[[SimScreen, str], str]] = {
    "wizard-step": _wizard_step,
    "promotion": _promotion,
    "message-box": _message_box,
    "notification-panel": _notification_panel,
}


def _screen_html(state: SimState, screen_id: str) -> str:
    screen = screen_for(state, screen_id)
    return _RENDERERS[screen.kind](screen, screen.render_body(state))


def _toast(state: SimState) -> str:
    """``SIM_TOAST``: a notification DSM drops on the desktop without a mask; it waits for
    nothing and blocks nothing (its close tool only hides it in this page)."""
    text = state.scenario.toast
    if not text:
        return ""
    return (
        '<div class="v-notification-panel v-notification-toast" role="status" '
        'aria-live="polite" data-sim-toast="1">'
        '<div class="v-notification-header">'
        f'<div class="v-notification-title">{_e(text)}</div>'
        '<i class="close-btn window-tool-close" data-sim-action="toast-close"></i></div></div>'
    )


# -- desktop, Control Panel -------------------------------------------------------------------

_ICON_KEYS = {
    "SYNO.SDS.PkgManApp.Instance": "pkg",
    "SYNO.SDS.AdminCenter.Application": "cp",
    "SYNO.SDS.App.FileStation3.Instance": "fs",
}


def _desktop(state: SimState, session: Session) -> str:
    # DSM's template puts the title on a line of its own, so its text content carries
    # newlines and indentation around the words; automation must match it with any whitespace.
    items = "".join(
        f'<li class="icon-item" syno-id="{app}" data-sim-open="{_ICON_KEYS[app]}">'
        f'<div class="icon-image icon-{_ICON_KEYS[app]}"></div>'
        '<div class="icon-title" elementtiming="desktop-item-title">\n'
        f"            {_e(title)}\n        </div></li>"
        for app, title in facts.screens.DESKTOP.items
    )
    return (
        f'<div class="sds-desktop" id="sds-desktop" data-synotoken="{_e(session.synotoken)}">'
        '<div class="sds-taskbar"><div class="sds-taskbar-start"></div>'
        f'<div class="sds-taskbar-user">{_e(session.user)}</div>'
        '<div class="sds-taskbar-logout" data-sim-action="logout" title="Sign out"></div></div>'
        f'<ul class="sds-desktop-shortcut">{items}</ul>'
        '<div id="sds-windows"></div>'
        f"{_toast(state)}</div>"
    )


_CP_ITEMS = (
    ("SYNO.SDS.AdminCenter.Share.Main", "Shared Folder"),
    ("SYNO.SDS.AdminCenter.FileService.Main", "File Services"),
    ("SYNO.SDS.AdminCenter.User.Main", "User & Group"),
    ("SYNO.SDS.AdminCenter.Network.Main", "Network"),
    ("SYNO.SDS.AdminCenter.Security.Main", "Security"),
    ("SYNO.SDS.AdminCenter.Update_Reset.Main", "Update & Restore"),
)


def _checkbox(name: str, label: str, checked: bool) -> str:
    # The input is moved out of the way like DSM's styled checkbox: only the icon (and the
    # label) react to clicks; app.js toggles the input from there.
    return (
        f'<div class="syno-ux-checkbox{" syno-ux-checkbox-checked" if checked else ""}">'
        f'<input type="checkbox" name="{name}" class="syno-ux-checkbox-input"'
        f'{" checked" if checked else ""} tabindex="-1">'
        '<div class="syno-ux-checkbox-icon" role="checkbox" '
        f'aria-checked="{"true" if checked else "false"}"></div>'
        f'<span class="syno-ux-checkbox-label">{_e(label)}</span></div>'
    )


def _tab(key: str, text: str, active: bool) -> str:
    return (
        f'<li class="x-tab-item{" x-tab-strip-active" if active else ""}" data-sim-tab="{key}">'
        '<a class="x-tab-strip-inner-wrap"><em class="x-tab-left">'
        f'<span class="x-tab-strip-inner"><span class="x-tab-strip-text">{_e(text)}</span>'
        "</span></em></a></li>"
    )


def _file_services(state: SimState) -> str:
    with state.lock:
        nfs_on = bool(state.nfs["enable_nfs"])
        nfs_v4 = bool(state.nfs["enable_nfs_v4"])
        smb_on = bool(state.smb["enable_samba"])
        workgroup = str(state.smb["workgroup"])
    tabs = "".join(
        _tab(key, text, key == "smb")
        for key, text in (("smb", "SMB"), ("nfs", "NFS"), ("ftp", "FTP"), ("advanced", "Advanced"))
    )
    smb_body = (
        '<fieldset class="x-fieldset"><legend class="x-fieldset-header">SMB</legend>'
        + _checkbox("enable_samba", "Enable SMB service", smb_on)
        + '<div class="x-form-item"><label class="x-form-item-label">Workgroup:</label>'
        f'<span class="x-form-display-field">{_e(workgroup)}</span></div></fieldset>'
    )
    nfs_body = (
        '<fieldset class="x-fieldset"><legend class="x-fieldset-header">NFS</legend>'
        + _checkbox("enable_nfs", "Enable NFS service", nfs_on)
        + '<div class="x-form-item"><label class="x-form-item-label">Maximum NFS protocol:'
        f'</label><span class="x-form-display-field">NFSv{"4.1" if nfs_v4 else "3"}</span>'
        "</div></fieldset>"
    )
    other = '<div class="sim-unavailable">This service is not configured by the simulator.</div>'
    bodies = "".join(
        f'<div class="x-panel sim-tab-body{"" if key == "smb" else " x-hide-display"}" '
        f'data-sim-tab-body="{key}">{body}</div>'
        for key, body in (
            ("smb", smb_body),
            ("nfs", nfs_body),
            ("ftp", other),
            ("advanced", other),
        )
    )
    return (
        '<div class="sim-fileservice" data-sim-module="file-services">'
        '<div class="x-tab-panel"><div class="x-tab-panel-header">'
        f'<ul class="x-tab-strip x-tab-strip-top">{tabs}</ul></div>'
        f'<div class="x-tab-panel-body">{bodies}</div></div>'
        '<div class="x-panel-fbar sim-fileservice-fbar">'
        '<div class="sim-statusbar"></div>'
        '<table class="x-btn syno-ux-button syno-ux-button-blue"><tbody><tr><td class="x-btn-mc">'
        '<em><button type="button" class="x-btn-text" data-sim-action="fs-apply">Apply</button>'
        "</em></td></tr></tbody></table>"
        '<table class="x-btn syno-ux-button"><tbody><tr><td class="x-btn-mc">'
        '<em><button type="button" class="x-btn-text" data-sim-action="fs-reset">Reset</button>'
        "</em></td></tr></tbody></table></div></div>"
    )


def _cp_grid() -> str:
    items = "".join(
        f'<div class="sim-cp-item" fn="{fn}" data-sim-cp="{fn}">'
        f'<div class="sim-cp-icon"></div><div class="sim-cp-title">{_e(title)}</div></div>'
        for fn, title in _CP_ITEMS
    )
    return f'<div class="sim-cp-grid">{items}</div>'


def _cp_nav(active: str) -> str:
    items = "".join(
        f'<div class="sim-cp-nav-item{" sim-cp-nav-active" if fn == active else ""}" '
        f'fn="{fn}" data-sim-cp="{fn}">{_e(title)}</div>'
        for fn, title in _CP_ITEMS
    )
    return f'<div class="sim-cp-nav">{items}</div>'


def panel(state: SimState, name: str) -> str | None:
    """A Control Panel fragment: ``control-panel`` (the window with its grid) or a module by
    its ``fn`` (nav + module body); None if unknown."""
    if name == "control-panel":
        return (
            '<div class="x-window sds-window sim-control-panel" '
            'syno-id="SYNO.SDS.AdminCenter.MainWindow">'
            '<div class="x-window-header"><span class="x-window-header-text">Control Panel'
            '</span><div class="x-tool x-tool-close" data-sim-action="window-close"></div></div>'
            f'<div class="x-window-body" id="sim-cp-body">{_cp_grid()}</div></div>'
        )
    titles = dict(_CP_ITEMS)
    if name not in titles:
        return None
    if name == "SYNO.SDS.AdminCenter.FileService.Main":
        body = _file_services(state)
    else:
        body = '<div class="sim-unavailable">This page is not part of the simulator.</div>'
    return (
        _cp_nav(name)
        + f'<div class="sim-cp-main"><div class="sim-cp-main-title">{_e(titles[name])}</div>'
        f"{body}</div>"
    )


# -- login ------------------------------------------------------------------------------------


def _login(state: SimState) -> str:
    return (
        '<div class="login-page welcome-page-bg">'
        '<div class="login-panel">'
        f'<div class="login-title">{_e(state.hostname)}</div>'
        '<div class="login-step" data-sim-login-step="account">'
        '<input type="text" name="username" id="login_username" class="login-textfield" '
        'placeholder="Enter user name" autocomplete="username" spellcheck="false">'
        '<button type="button" class="login-btn" syno-id="login-btn-next" '
        'data-sim-action="login-next">&#8594;</button></div>'
        '<div class="login-step" data-sim-login-step="password" hidden>'
        '<div class="login-account-name"></div>'
        '<input type="password" name="current-password" id="login_passwd" '
        'class="login-textfield" placeholder="Enter password" autocomplete="current-password">'
        '<button type="button" class="login-btn" syno-id="login-btn-signin" '
        'data-sim-action="login-submit">&#8594;</button></div>'
        '<div class="login-error" role="alert" hidden></div>'
        "</div></div>"
    )


# -- which view -------------------------------------------------------------------------------


def current_view(state: SimState, session: Session | None, want: str = "") -> View:
    """The view ``GET /`` shows now: ``installing``, ``welcome``, ``admin``, ``login``,
    ``screen`` (with the screen id) or ``desktop``. ``want="admin"`` asks for the admin form
    (after the welcome button), honoured only while that is possible."""
    with state.lock:
        if state.account is None:
            if not state.install_ready():
                return {"view": "installing", "html": _installing()}
            if want == "admin":
                return {"view": "admin", "html": welcome_admin_form(state.hostname)}
            return {"view": "welcome", "html": _welcome()}
        if not state.is_admin(session) or session is None:
            return {"view": "login", "html": _login(state)}
        screen = state.current_screen()
        if screen is None:
            return {"view": "desktop", "html": _desktop(state, session)}
        html = _screen_html(state, screen)
        if SCREENS[screen].over_desktop:
            html = _desktop(state, session) + html
        return {"view": "screen", "screen": screen, "html": html}
