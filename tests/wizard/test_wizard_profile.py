"""Wizard profiles: loading, validation, inheritance; secret masking; unknown-screen suggestions.

Pure and fast: no browser.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import zipfile
from pathlib import Path

import playwright
import pytest
import yaml

from vdsmlib.dsm import screens
from vdsmlib.errors import VdsmError
from vdsmlib.evidence.record import first_line
from vdsmlib.wizard import (
    STAGES,
    BrowserError,
    BrowserSession,
    ProfileError,
    Wizard,
    WizardError,
    default_profiles_dir,
    ensure_playwright_ffmpeg,
    load_stage_profile,
    mask_text,
    profile_files,
)
from vdsmlib.wizard.profile import Check, Click, ClosePanel, Fill, Screen
from vdsmlib.wizard.secrets import is_secret_name, scrub_zip, secret_values
from vdsmlib.wizard.unknown import PageSnapshot, suggest_entry

SHIPPED = ["dsm-7.2.2", "dsm-7.2.1", "dsm-7.1.1", "dsm-7.3.2"]
FAST = Path(__file__).parent / "profiles"


def write(root: Path, profile: str, stage: str, text: str) -> Path:
    path = root / profile / f"{stage}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("profile", SHIPPED)
@pytest.mark.parametrize("stage", STAGES)
def test_shipped_profiles_load(profile: str, stage: str) -> None:
    loaded = load_stage_profile(profile, stage)
    assert loaded.profile == profile and loaded.stage == stage
    assert loaded.files[0] == default_profiles_dir() / profile / f"{stage}.yaml"
    if profile != "dsm-7.2.2":
        # Near-empty children: same content as 7.2.2, read from both files.
        base = load_stage_profile("dsm-7.2.2", stage)
        assert loaded.files[1] == base.files[0]
        assert loaded.model_dump(exclude={"profile", "files"}) == base.model_dump(
            exclude={"profile", "files"}
        )
        assert "until someone runs" in loaded.files[0].read_text()


def test_dsm_722_post_wizard_knows_the_nine_screens_of_the_facts() -> None:
    profile = load_stage_profile("dsm-7.2.2", "post-wizard")
    ids = [s.id for s in profile.screens]
    assert ids[:9] == [
        "update-options",
        "synology-account",
        "user-experience",
        "file-access-promotion",
        "2fa-promotion",
        "adaptive-mfa-promotion",
        "mfa-warning",
        "notification-setup",
        "notification-reminder",
    ]
    assert ids[-1] == "promotion-window"  # the generic closer matches last
    assert profile.order == "any"
    assert all(profile.is_optional(s) for s in profile.screens)
    assert profile.done is not None and profile.done.visible.text == "Package Center"
    assert profile.timeouts.idle > 0
    notification = profile.screen("notification-setup")
    assert notification.identify.within == "div.v-notification-panel"
    assert notification.actions == [ClosePanel(close_panel="i.close-btn.window-tool-close")]


def test_dsm_722_post_wizard_targets_exactly_dsms_selectors_and_texts() -> None:
    # The profile is written against DSM (vdsmlib.dsm.screens, from the facts file): each of
    # DSM's screens is identified by its title element and text and dismissed by its button.
    profile = load_stage_profile("dsm-7.2.2", "post-wizard")
    for fact in screens.POST_WIZARD.values():
        matching = [s for s in profile.screens if s.identify.text == fact.title]
        assert len(matching) == 1, fact.id
        screen = matching[0]
        assert screen.identify.selector == fact.title_selector, fact.id
        clicked = [a.click for a in screen.actions if isinstance(a, Click)]
        closed = [a.close_panel for a in screen.actions if isinstance(a, ClosePanel)]
        assert clicked[-1:] == [fact.action_selector] or closed == [fact.action_selector], fact.id
    assert profile.done is not None
    assert profile.done.visible.selector == screens.DESKTOP.item_title_selector
    assert profile.done.visible.text == screens.DESKTOP.ready_title
    # Only modal things block the desktop; a notification panel is not modal.
    assert set(screens.DESKTOP.modal_masks) <= set(profile.done.blocked_by)
    assert "div.v-notification-panel" not in profile.done.blocked_by


def test_dsm_722_admin_and_services_are_ordered_and_required() -> None:
    admin = load_stage_profile("dsm-7.2.2", "admin")
    assert admin.order == "sequence"
    assert admin.value_names() == {"server_name", "admin_user", "admin_password"}
    form = admin.screen("admin-account")
    assert not admin.is_optional(form)
    assert form.errors == [".v-tooltip-error", ".error-msg"]
    assert form.leave_condition.hidden == form.identify
    services = load_stage_profile("dsm-7.2.2", "services-ui")
    assert [s.id for s in services.screens] == [
        "open-control-panel",
        "file-services",
        "nfs-tab",
        "enable-nfs",
    ]
    assert not any(services.is_optional(s) for s in services.screens)
    enable = services.screen("enable-nfs")
    assert enable.actions[0] == Check(
        check="input[name='enable_nfs']",
        via="input[name='enable_nfs'] + div.syno-ux-checkbox-icon",
    )
    assert enable.skip_if is not None and enable.skip_if.checked == "input[name='enable_nfs']"


def test_profile_files_lists_child_then_parent() -> None:
    files = profile_files("dsm-7.3.2", "post-wizard")
    assert [f.parent.name for f in files] == ["dsm-7.3.2", "dsm-7.2.2"]
    assert all(f.is_file() for f in files)


def test_test_profile_overrides_only_timeouts() -> None:
    fast = load_stage_profile("fast", "post-wizard", search=[FAST, default_profiles_dir()])
    base = load_stage_profile("dsm-7.2.2", "post-wizard")
    assert fast.timeouts.screen == 8 and fast.timeouts.idle == 2
    assert fast.timeouts.poll == base.timeouts.poll  # merged key by key
    assert fast.screens == base.screens


def test_inheritance_replaces_appends_and_drops_screens(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base",
        "post-wizard",
        """
stage: post-wizard
order: any
timeouts: {screen: 30, idle: 5}
done: {visible: div.desktop}
screens:
  - {id: a, identify: div.a, actions: [{click: button.a}]}
  - {id: b, identify: div.b, actions: [{click: button.b}]}
  - {id: c, identify: div.c, actions: [{click: button.c}]}
""",
    )
    write(
        tmp_path,
        "child",
        "post-wizard",
        """
inherits: base
timeouts: {idle: 1}
drop_screens: [c]
screens:
  - {id: b, identify: {selector: div.b, text: New B}, actions: [{press: Escape}]}
  - {id: d, identify: div.d, optional: false}
""",
    )
    child = load_stage_profile("child", "post-wizard", search=[tmp_path])
    assert [s.id for s in child.screens] == ["a", "b", "d"]
    assert child.screen("b").identify.text == "New B"
    assert child.timeouts.screen == 30 and child.timeouts.idle == 1
    assert not child.is_optional(child.screen("d"))
    assert child.files == (tmp_path / "child/post-wizard.yaml", tmp_path / "base/post-wizard.yaml")


def test_inherits_from_a_later_search_dir(tmp_path: Path) -> None:
    write(tmp_path, "mine", "admin", "inherits: dsm-7.2.2\ntimeouts: {screen: 3}\n")
    mine = load_stage_profile("mine", "admin", search=[tmp_path, default_profiles_dir()])
    assert mine.timeouts.screen == 3
    assert [s.id for s in mine.screens] == ["welcome", "admin-account"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stage: admin\norder: sequence\nscreens:\n"
            "  - {id: x, identify: a, actions: [{clik: b}]}",
            ["screens[0] (id=x).actions[0]", "exactly one of click, fill"],
        ),
        (
            "stage: admin\norder: sequence\nscreens:\n  - {id: x, identfy: a}",
            ["screens[0] (id=x).identfy", "Extra inputs", "screens[0] (id=x).identify"],
        ),
        (
            "stage: admin\norder: sequence\nscreens:\n"
            "  - {id: x, identify: a, left: {visible: a, hidden: b}}",
            ["screens[0] (id=x).left", "exactly one of visible, hidden, checked"],
        ),
        (
            "stage: admin\norder: sequence\ntimeouts: {screen: -1}\n"
            "screens: [{id: x, identify: a}]",
            ["timeouts.screen", "greater than 0"],
        ),
        ("stage: admin\norder: any\nscreens: [{id: x, identify: a}]", ["needs a 'done'"]),
        (
            "stage: admin\norder: any\ntimeouts: {screen: 5, idle: 5}\ndone: {visible: a}",
            ["timeouts", "idle (5) must be shorter than screen (5)"],
        ),
        (
            "stage: admin\norder: sequence\nscreens: [{id: x, identify: a}, {id: x, identify: b}]",
            ["screens", "repeated: x"],
        ),
        ("stage: admin\norder: sometimes\ndone: {visible: a}", ["order", "'any' or 'sequence'"]),
        (
            "stage: admin\norder: sequence\nscreens:\n  - {id: x, identify: a, "
            "actions: [{fill: '#a'}]}",
            ["screens[0] (id=x).actions[0].value: Field required"],
        ),
        ("stage: boot\norder: sequence\ndone: {visible: a}", ["stage is 'boot'", "'admin'"]),
        ("- just a list", ["top level must be a mapping"]),
        ("stage: admin\n  bad: [indent", ["cannot read profile"]),
    ],
)
def test_invalid_profiles_name_file_and_field(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, "bad", "admin", text)
    with pytest.raises(ProfileError) as info:
        load_stage_profile("bad", "admin", search=[tmp_path])
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message
    assert isinstance(info.value, WizardError) and isinstance(info.value, VdsmError)


def test_missing_profile_lists_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(
        ProfileError, match=r"no admin profile for 'dsm-9\.9'.*dsm-9\.9/admin\.yaml"
    ):
        load_stage_profile("dsm-9.9", "admin", search=[tmp_path])
    with pytest.raises(ProfileError, match="unknown stage"):
        load_stage_profile("dsm-7.2.2", "flatten")
    with pytest.raises(ProfileError, match="not a plain name"):
        load_stage_profile("../etc", "admin")


def test_inheritance_loop_and_bad_drop(tmp_path: Path) -> None:
    write(tmp_path, "a", "boot", "inherits: b\n")
    write(tmp_path, "b", "boot", "inherits: a\n")
    with pytest.raises(ProfileError, match="loops: a -> b -> a"):
        load_stage_profile("a", "boot", search=[tmp_path])
    write(tmp_path, "c", "boot", "inherits: dsm-7.2.2\ndrop_screens: [nope]\n")
    with pytest.raises(ProfileError, match=r"c/boot\.yaml.*drop_screens.*nope"):
        load_stage_profile("c", "boot", search=[tmp_path, default_profiles_dir()])


def test_loader_fields_cannot_be_set_in_yaml(tmp_path: Path) -> None:
    write(tmp_path, "p", "boot", "inherits: dsm-7.2.2\nfiles: [x]\n")
    with pytest.raises(ProfileError, match="'files' is set by the loader"):
        load_stage_profile("p", "boot", search=[tmp_path, default_profiles_dir()])


def test_wizard_refuses_missing_values_without_printing_the_others() -> None:
    admin = load_stage_profile("dsm-7.2.2", "admin")
    with pytest.raises(WizardError, match="needs values admin_user, server_name") as info:
        # The check happens before the page is touched, so no browser is needed here.
        Wizard(None, admin, {"admin_password": "S3cret-pass"}, Path("/nonexistent"))  # type: ignore[arg-type]
    assert "S3cret-pass" not in str(info.value)


def test_secret_names_and_masking() -> None:
    assert is_secret_name("admin_password") and is_secret_name("api_token")
    assert not is_secret_name("admin_user") and not is_secret_name("server_name")
    values = {"admin_user": "ci", "admin_password": 'Pa"ss1', "other_pass": "Pa"}
    assert secret_values(values) == ['Pa"ss1', "Pa"]
    assert mask_text('user ci, pw Pa"ss1, json "Pa\\"ss1"', secret_values(values)) == (
        'user ci, pw ***, json "***"'
    )


def test_scrub_zip_masks_text_members_and_keeps_binary(tmp_path: Path) -> None:
    path = tmp_path / "t.zip"
    binary = bytes(range(256)) * 4
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("trace.trace", '{"method":"fill","params":{"value":"Secr3t!x"}}\n')
        archive.writestr("resources/a.jpeg", binary)
        archive.writestr("resources/b.html", "<input value='Secr3t!x'>")
    assert scrub_zip(path, ["Secr3t!x"]) == 2
    with zipfile.ZipFile(path) as archive:
        assert b"Secr3t!x" not in archive.read("trace.trace")
        assert b'"value":"***"' in archive.read("trace.trace")
        assert archive.read("resources/b.html") == b"<input value='***'>"
        assert archive.read("resources/a.jpeg") == binary


def test_suggestion_is_a_valid_screen_that_clicks_the_dismiss_button() -> None:
    snapshot = PageSnapshot(
        text="Something new OK Cancel",
        dialog_selector="div[syno-id='x-dialog']",
        dialog_html="<div>...</div>",
        titles=[
            {"selector": "span.v-window-header-title", "text": "Something new"},
            {"selector": "div.dialog-content", "text": "Something new"},
        ],
        buttons=[
            {"selector": "button[syno-id='x-help']", "text": "Help"},
            {"selector": "button[syno-id='x-ok']", "text": "OK"},
        ],
    )
    text = suggest_entry(snapshot, "post-wizard")
    entries = yaml.safe_load(text)
    screen = Screen.model_validate(entries[0])
    assert screen.id == "something-new"
    assert screen.identify.text == "Something new"
    assert screen.identify.selector == "div.dialog-content"  # DSM's title classes first
    assert screen.actions[0] == Click(click="button[syno-id='x-ok']")
    assert "button[syno-id='x-help']" in text  # alternatives listed as comments
    empty = yaml.safe_load(suggest_entry(PageSnapshot(), "boot"))
    assert empty[0]["identify"]["selector"] == "REPLACE-ME"


def test_fill_action_keeps_the_value_name_not_the_value() -> None:
    admin = load_stage_profile("dsm-7.2.2", "admin")
    fills = [a for a in admin.screen("admin-account").actions if isinstance(a, Fill)]
    names = [f.value for f in fills]
    assert names == ["server_name", "admin_user", "admin_password", "admin_password"]


def test_ffmpeg_link_uses_the_revision_of_the_installed_playwright(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: apt-get install ffmpeg")
    manifest = Path(playwright.__file__).parent / "driver/package/browsers.json"
    revision = next(
        b["revision"] for b in json.loads(manifest.read_text())["browsers"] if b["name"] == "ffmpeg"
    )
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))
    link = ensure_playwright_ffmpeg()
    assert link == tmp_path / f"ffmpeg-{revision}" / "ffmpeg-linux"
    assert link.is_symlink() and link.resolve() == Path(shutil.which("ffmpeg") or "").resolve()
    assert ensure_playwright_ffmpeg() == link  # idempotent


def test_missing_ffmpeg_and_chromium_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    with caplog.at_level("WARNING", logger="vdsmlib.wizard.browser"):
        assert ensure_playwright_ffmpeg() is None
    assert [r.getMessage() for r in caplog.records] == [
        "ffmpeg not found: no video will be recorded (apt-get install ffmpeg)"
    ]
    monkeypatch.setenv("VDSM_CHROMIUM", str(tmp_path / "no-chromium"))
    session = BrowserSession(tmp_path / "evidence")
    with pytest.raises(BrowserError, match=r"Chromium not found at .*: apt-get install chromium"):
        asyncio.run(session.start())
    asyncio.run(session.close())  # nothing started: still fine


def test_a_profile_error_is_one_line_with_every_field_and_its_reason(tmp_path: Path) -> None:
    """Errors are shown by their first line (the record, ``make build``): nothing may follow."""
    data = yaml.safe_load((default_profiles_dir() / "dsm-7.2.2" / "post-wizard.yaml").read_text())
    screen = data["screens"][3]
    screen["actions"] = [{"click": None}, {"fill": "#a"}]
    path = write(tmp_path, "bad", "post-wizard", yaml.safe_dump(data))
    with pytest.raises(ProfileError) as info:
        load_stage_profile("bad", "post-wizard", search=[tmp_path])
    message = str(info.value)
    assert message == first_line(message, 2000), message
    where = f"screens[3] (id={screen['id']}).actions"
    assert message == (
        f"profile {path}: {where}[0].click: Input should be a valid string; "
        f"{where}[1].value: Field required (fix the file and run again)"
    )
    path.write_text("stage: post-wizard\n  bad: [indent\n")
    with pytest.raises(ProfileError) as info:
        load_stage_profile("bad", "post-wizard", search=[tmp_path])
    message = str(info.value)
    assert message == first_line(message, 2000), message
    assert message.startswith(f"cannot read profile {path}: mapping values are not allowed")
    assert message.endswith("(line 2, column 6)")
