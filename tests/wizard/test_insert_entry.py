"""The suggested entry goes into the stage's profile file, correctly nested, and loads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from vdsmlib.wizard import ProfileError, load_stage_profile
from vdsmlib.wizard.unknown import PageSnapshot, insert_entry, suggest_entry

ROOT = Path(__file__).parents[2]

SNAPSHOT = PageSnapshot(
    text="Storage Pool Check The storage pool is being checked. OK",
    dialog_selector="div.v-window.v-message-box",
    titles=[{"selector": "div.dialog-content", "text": "Storage Pool Check"}],
    buttons=[{"selector": "button[syno-id='sim-extra-dialog-fbar-ok']", "text": "OK"}],
)


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "params" / "profiles", tmp_path / "profiles")
    return tmp_path / "profiles"


def test_inserted_first_in_screens_with_the_files_indentation(profiles: Path) -> None:
    path = profiles / "dsm-7.2.2" / "post-wizard.yaml"
    before_text = path.read_text()
    before = load_stage_profile("dsm-7.2.2", "post-wizard", search=[profiles])
    screen_id = insert_entry(path, suggest_entry(SNAPSHOT, "post-wizard"))
    assert screen_id == "storage-pool-check"
    after = load_stage_profile("dsm-7.2.2", "post-wizard", search=[profiles])
    assert [s.id for s in after.screens] == [screen_id, *(s.id for s in before.screens)]
    new = after.screen(screen_id)
    assert new.identify.selector == "div.dialog-content"
    assert new.identify.text == "Storage Pool Check"
    assert after.done == before.done and after.timeouts == before.timeouts
    text = path.read_text()
    # the header comments and every original line stay; the entry is indented like the others
    assert text.splitlines()[:10] == before_text.splitlines()[:10]
    assert "\n  - id: storage-pool-check\n    identify:\n" in text
    assert all(line in text.splitlines() for line in before_text.splitlines())


def test_into_an_inheriting_file_without_screens(profiles: Path) -> None:
    path = profiles / "dsm-7.3.2" / "post-wizard.yaml"
    assert "screens" not in (yaml.safe_load(path.read_text()) or {})
    insert_entry(path, suggest_entry(SNAPSHOT, "post-wizard"))
    data = yaml.safe_load(path.read_text())
    assert data["inherits"] == "dsm-7.2.2" and data["screens"][0]["id"] == "storage-pool-check"
    merged = load_stage_profile("dsm-7.3.2", "post-wizard", search=[profiles])
    assert "storage-pool-check" in [s.id for s in merged.screens]
    parent = load_stage_profile("dsm-7.2.2", "post-wizard", search=[profiles])
    assert "storage-pool-check" not in [s.id for s in parent.screens]


def test_twice_or_garbage_is_refused_and_the_file_stays(profiles: Path) -> None:
    path = profiles / "dsm-7.2.2" / "post-wizard.yaml"
    suggestion = suggest_entry(SNAPSHOT, "post-wizard")
    insert_entry(path, suggestion)
    once = path.read_text()
    with pytest.raises(ProfileError, match="already has a screen 'storage-pool-check'"):
        insert_entry(path, suggestion)
    with pytest.raises(ProfileError, match="one screen"):
        insert_entry(path, "- id: a\n- id: b\n")
    with pytest.raises(ProfileError, match="not YAML"):
        insert_entry(path, "- id: [unclosed\n")
    assert path.read_text() == once
