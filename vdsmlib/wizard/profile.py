"""Wizard profiles: DSM's screens described as data, one YAML file per stage.

A profile is a directory ``params/profiles/<profile>/`` with one file per stage
(``boot.yaml``, ``admin.yaml``, ``post-wizard.yaml``, ``services-ui.yaml``). A file may start
with ``inherits: <other profile>``: it then holds only what differs (see :func:`merge_profile`).

Example::

    profile = load_stage_profile("dsm-7.2.2", "post-wizard")
    profile.screens[0].id          # 'update-options'
    profile.files                  # the YAML files read, for the stage fingerprint

Schema of a stage file (every field is checked when loading; errors name file and field)::

    stage: post-wizard          # must match the file name
    order: any                  # any: a set of screens in any order (optional by default)
                                # sequence: ordered steps (required by default)
    timeouts: {screen: 120, stage: 900, idle: 10, poll: 0.25, reload: null}
                                # reload: seconds between two reloads of a page that failed
                                # to load, answered HTTP 5xx or shows a reload_when page;
                                # null: never reload. A page that is still rendering is never
                                # reloaded, however long its first render takes.
    reload_when: [selector | {selector, text}, ...]   # e.g. the container's "please wait" page
    done:                       # when the stage is over (besides the steps of a sequence)
      visible: {selector: ..., text: ..., exact: false}   # exact: any whitespace matches
      blocked_by: [selector, ...]   # ...but not while one of these is visible (modal things:
                                    # a toast or notification on the desktop blocks nothing)
    screens:
      - id: update-options
        identify: {selector: div.welcome-step-title, text: Select an update option}
        skip_if: {checked: selector}        # optional: do nothing when this holds
        actions:
          - click: selector                 # optional text/exact narrow it down
          - fill: selector                  # value: the name of a value, never the value
            value: admin_password
          - check: selector                 # a checkbox input; via: what to click if unchecked
          - choose: selector                # a radio (or its styled wrapper)
          - press: Enter                    # optional on: selector to focus first
          - close_panel: selector           # click this inside the identified panel/window
        left: {hidden: ...} | {visible: ...} | {checked: ...}   # default: identify hidden
        errors: [selector, ...]             # visible text here fails the screen at once
        optional: true
        timeout: 600                        # seconds for the screen to leave (default: screen)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from vdsmlib.project import params_dir
from vdsmlib.wizard.errors import ProfileError

__all__ = [
    "STAGES",
    "Action",
    "Check",
    "Choose",
    "Click",
    "ClosePanel",
    "Condition",
    "Done",
    "Fill",
    "Press",
    "Screen",
    "StageProfile",
    "Target",
    "Timeouts",
    "default_profiles_dir",
    "load_stage_profile",
    "merge_profile",
    "profile_files",
]

STAGES = ("boot", "admin", "post-wizard", "services-ui")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Model):
    """Elements matching ``selector`` (and containing ``text``; the whole text if ``exact``).

    ``within``: a container selector; the target counts only inside a container that holds it,
    and ``close_panel`` actions search that container.
    """

    selector: str = Field(min_length=1)
    text: str | None = None
    exact: bool = False
    within: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        # A bare string is the common case: a selector with no text.
        return {"selector": data} if isinstance(data, str) else data

    def describe(self) -> str:
        """``selector "text"``, for messages."""
        text = f' {"==" if self.exact else "~"} "{self.text}"' if self.text is not None else ""
        inside = f" within {self.within}" if self.within else ""
        return f"{self.selector}{text}{inside}"


class Condition(_Model):
    """Exactly one of: a target is visible, a target is hidden, a checkbox input is checked."""

    visible: Target | None = None
    hidden: Target | None = None
    checked: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        given = [name for name in ("visible", "hidden", "checked") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of visible, hidden, checked (got {given or 'none'})"
            )
        return self

    def describe(self) -> str:
        """Human-readable form for messages."""
        if self.visible is not None:
            return f"visible {self.visible.describe()}"
        if self.hidden is not None:
            return f"hidden {self.hidden.describe()}"
        return f"checked {self.checked}"


class Click(_Model):
    """Click the first visible element matching ``click`` (and ``text``)."""

    click: str = Field(min_length=1)
    text: str | None = None
    exact: bool = False


class Fill(_Model):
    """Fill ``fill`` with the value named ``value``; ``keystrokes`` types key by key (ExtJS)."""

    fill: str = Field(min_length=1)
    value: str = Field(min_length=1)
    keystrokes: bool = False


class Check(_Model):
    """Make the checkbox input ``check`` checked, clicking ``via`` (a styled icon) if it is not."""

    check: str = Field(min_length=1)
    via: str | None = None


class Choose(_Model):
    """Select a radio button (or click its styled wrapper)."""

    choose: str = Field(min_length=1)


class Press(_Model):
    """Press a key (Playwright key name), after focusing ``on`` if given."""

    press: str = Field(min_length=1)
    on: str | None = None


class ClosePanel(_Model):
    """Click ``close_panel`` inside the panel or window the screen was identified by."""

    close_panel: str = Field(min_length=1)


_VERBS = ("click", "fill", "check", "choose", "press", "close_panel")


def _verb(data: Any) -> str | None:
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if not isinstance(data, dict):
        return None
    verbs = [key for key in _VERBS if key in data]
    return verbs[0] if len(verbs) == 1 else None


Action = Annotated[
    Annotated[Click, Tag("click")]
    | Annotated[Fill, Tag("fill")]
    | Annotated[Check, Tag("check")]
    | Annotated[Choose, Tag("choose")]
    | Annotated[Press, Tag("press")]
    | Annotated[ClosePanel, Tag("close_panel")],
    Discriminator(
        _verb,
        custom_error_type="action_verb",
        custom_error_message=f"an action needs exactly one of {', '.join(_VERBS)}",
    ),
]


class Screen(_Model):
    """One known screen: how to recognise it, what to do, and when it has gone."""

    id: str = Field(pattern=_NAME.pattern)
    identify: Target
    actions: list[Action] = Field(default_factory=list)
    left: Condition | None = None
    skip_if: Condition | None = None
    errors: list[str] = Field(default_factory=list)
    optional: bool | None = None
    timeout: float | None = Field(default=None, gt=0)

    @property
    def leave_condition(self) -> Condition:
        """The ``left`` condition, defaulting to the identifier being hidden."""
        return self.left or Condition(hidden=self.identify)


class Timeouts(_Model):
    """Seconds. ``screen``: how long nothing known may show; ``idle``: quiet time before done;
    ``modal``: how long an unknown modal (a ``done.blocked_by`` selector visible, no known
    screen, the page unchanged) may block before the stage fails with its diagnosis."""

    screen: float = Field(default=60, gt=0)
    modal: float = Field(default=6, gt=0)
    stage: float = Field(default=1800, gt=0)
    idle: float = Field(default=0, ge=0)
    poll: float = Field(default=0.25, gt=0, le=1.5)
    reload: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _idle_fits(self) -> Timeouts:
        # Otherwise a quiet, finished stage would be reported as an unknown screen.
        if self.idle >= self.screen:
            raise ValueError(f"idle ({self.idle:g}) must be shorter than screen ({self.screen:g})")
        return self


class Done(_Model):
    """The stage is done when ``visible`` shows and nothing in ``blocked_by`` is visible."""

    visible: Target
    blocked_by: list[str] = Field(default_factory=list)


class StageProfile(_Model):
    """A validated stage file (after inheritance), with the name and files it came from."""

    stage: Literal["boot", "admin", "post-wizard", "services-ui"]
    order: Literal["any", "sequence"]
    timeouts: Timeouts = Field(default_factory=Timeouts)
    reload_when: list[Target] = Field(default_factory=list)
    done: Done | None = None
    screens: list[Screen] = Field(default_factory=list)
    profile: str = ""
    files: tuple[Path, ...] = ()

    @field_validator("screens")
    @classmethod
    def _unique_ids(cls, screens: list[Screen]) -> list[Screen]:
        ids = [screen.id for screen in screens]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"screen ids must be unique, repeated: {', '.join(twice)}")
        return screens

    @model_validator(mode="after")
    def _has_an_end(self) -> StageProfile:
        if self.order == "any" and self.done is None:
            raise ValueError("order 'any' needs a 'done' condition (nothing else ends the stage)")
        if not self.screens and self.done is None:
            raise ValueError("a stage needs screens or a 'done' condition")
        return self

    def is_optional(self, screen: Screen) -> bool:
        """Screens are optional by default in ``order: any``, required in ``order: sequence``."""
        return screen.optional if screen.optional is not None else self.order == "any"

    def screen(self, screen_id: str) -> Screen:
        """The screen with this id (KeyError names the known ids)."""
        for screen in self.screens:
            if screen.id == screen_id:
                return screen
        known = ", ".join(s.id for s in self.screens) or "none"
        raise KeyError(f"no screen {screen_id!r} in {self.profile}/{self.stage} (known: {known})")

    def value_names(self) -> set[str]:
        """Names of the values the fill actions need."""
        return {a.value for s in self.screens for a in s.actions if isinstance(a, Fill)}


def default_profiles_dir() -> Path:
    """``$VDSM_PROFILES_DIR``, else ``params/profiles`` of the project directory."""
    env = os.environ.get("VDSM_PROFILES_DIR")
    if env:
        return Path(env)
    return params_dir() / "profiles"


def _find(profile: str, stage: str, search: Sequence[Path]) -> Path:
    if not _NAME.match(profile):
        raise ProfileError(f"profile name {profile!r} is not a plain name (letters, digits, ._-)")
    for directory in search:
        path = directory / profile / f"{stage}.yaml"
        if path.is_file():
            return path
    looked = ", ".join(str(d / profile / f"{stage}.yaml") for d in search)
    raise ProfileError(
        f"no {stage} profile for {profile!r}: looked at {looked}. "
        f"Create it (it may hold only 'inherits: dsm-7.2.2') or pick another profile."
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ProfileError(f"cannot read profile {path}: {err}") from err
    except yaml.YAMLError as err:
        # one line: PyYAML's text spreads the problem and its place over several
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise ProfileError(f"cannot read profile {path}: {problem}{where}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProfileError(
            f"profile {path}: top level must be a mapping, got {type(data).__name__}"
        )
    for key in ("profile", "files"):
        if key in data:
            raise ProfileError(f"profile {path}: '{key}' is set by the loader, remove it")
    return data


def merge_profile(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Apply a child stage file onto its parent's (both raw YAML mappings).

    Mappings (``timeouts``, ``done``) merge key by key; ``screens`` merge by ``id``: a child
    screen replaces the parent's screen of that id in place, new ids are appended;
    ``drop_screens: [id, ...]`` removes inherited screens. Anything else replaces.
    """
    merged = {k: v for k, v in parent.items() if k != "inherits"}
    drop = child.get("drop_screens", [])
    if not isinstance(drop, list):
        raise ValueError("drop_screens must be a list of screen ids")
    for key, value in child.items():
        if key in ("inherits", "drop_screens"):
            continue
        if key == "screens":
            merged["screens"] = _merge_screens(merged.get("screens", []), value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    if drop:
        screens = merged.get("screens", [])
        known = {s.get("id") for s in screens if isinstance(s, dict)}
        unknown = [d for d in drop if d not in known]
        if unknown:
            raise ValueError(f"drop_screens names screens the parent does not have: {unknown}")
        merged["screens"] = [s for s in screens if s.get("id") not in drop]
    return merged


def _merge_screens(parent: Any, child: Any) -> Any:
    if not isinstance(parent, list) or not isinstance(child, list):
        return child  # let validation report the wrong type
    merged = list(parent)
    index = {s.get("id"): i for i, s in enumerate(merged) if isinstance(s, dict)}
    for screen in child:
        screen_id = screen.get("id") if isinstance(screen, dict) else None
        if screen_id in index:
            merged[index[screen_id]] = screen
        else:
            merged.append(screen)
    return merged


def _resolve(
    profile: str, stage: str, search: Sequence[Path], chain: list[str]
) -> tuple[dict[str, Any], list[Path]]:
    if profile in chain:
        raise ProfileError(f"profile inheritance loops: {' -> '.join([*chain, profile])}")
    path = _find(profile, stage, search)
    data = _read(path)
    parent_name = data.get("inherits")
    if parent_name is None:
        return data, [path]
    if not isinstance(parent_name, str):
        raise ProfileError(f"profile {path}: inherits must be a profile name, got {parent_name!r}")
    parent, files = _resolve(parent_name, stage, search, [*chain, profile])
    try:
        return merge_profile(parent, data), [path, *files]
    except ValueError as err:
        raise ProfileError(f"profile {path}: {err}") from err


def _field_path(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for i, item in enumerate(loc):
        if item in _VERBS and 0 < i < len(loc) - 1 and isinstance(loc[i - 1], int):
            continue  # the action's union tag (its verb), not a field: "actions[0].click"
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and "id" in node:
                    label = f"[{item}] (id={node['id']})"
            parts.append(label)
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts) or "(top level)"


def load_stage_profile(
    profile: str, stage: str, *, search: Iterable[Path | str] | None = None
) -> StageProfile:
    """Load, inherit and validate ``<profile>/<stage>.yaml``.

    ``search``: directories holding profile directories, first match wins (inherited profiles
    are looked up the same way); default ``[default_profiles_dir()]``. Raises ProfileError
    naming the file and the field.
    """
    if stage not in STAGES:
        raise ProfileError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    dirs = [Path(d) for d in search] if search is not None else [default_profiles_dir()]
    data, files = _resolve(profile, stage, dirs, [])
    origin = str(files[0]) + (
        f" (inheriting {', '.join(str(f) for f in files[1:])})" if len(files) > 1 else ""
    )
    if data.get("stage", stage) != stage:
        raise ProfileError(f"profile {origin}: stage is {data.get('stage')!r}, file says {stage!r}")
    try:
        return StageProfile.model_validate(
            {**data, "stage": stage, "profile": profile, "files": tuple(files)}
        )
    except ValidationError as err:
        # one line, every field and its reason: errors are shown by their first line
        problems = [
            f"{_field_path(tuple(e['loc']), data)}: {e['msg']}"
            for e in err.errors(include_url=False)
        ]
        raise ProfileError(
            f"profile {origin}: {'; '.join(problems)} (fix the file and run again)"
        ) from err


def profile_files(
    profile: str, stage: str, *, search: Iterable[Path | str] | None = None
) -> list[Path]:
    """The YAML files a stage reads (the file and its ancestors), for the stage fingerprint."""
    return list(load_stage_profile(profile, stage, search=search).files)
