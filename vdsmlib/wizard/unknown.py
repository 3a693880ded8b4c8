"""Describe a screen the profile does not know, and suggest a profile entry for it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vdsmlib.wizard.errors import ProfileError

__all__ = ["PageSnapshot", "capture_js", "insert_entry", "suggest_entry"]

# Runs in the page: the visible text, the topmost dialog/window, and candidate identifiers and
# buttons inside it, each with a selector that is stable across runs (syno-id, name, classes).
capture_js = r"""
(maxHtml) => {
  const visible = (el) => {
    if (!el || !el.getBoundingClientRect) return false;
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
      && s.opacity !== '0';
  };
  const zOf = (el) => {
    let z = 0;
    for (let e = el; e && e !== document.documentElement; e = e.parentElement) {
      const v = parseInt(getComputedStyle(e).zIndex, 10);
      if (!isNaN(v)) z = Math.max(z, v);
    }
    return z;
  };
  const cssEscape = (v) => v.replace(/'/g, "\\'");
  const volatile = /^(x-btn-(over|focus|click)|.*-(hover|focus|active|over|pressed)|ext-gen.*)$/;
  const selectorOf = (el) => {
    const tag = el.tagName.toLowerCase();
    const synoId = el.getAttribute('syno-id');
    if (synoId) return `${tag}[syno-id='${cssEscape(synoId)}']`;
    const name = el.getAttribute('name');
    if (name) return `${tag}[name='${cssEscape(name)}']`;
    if (el.id && !/^(syno-\d+|ext-.*|x-auto-.*)$/.test(el.id)) return `#${el.id}`;
    const classes = Array.from(el.classList).filter((c) => !volatile.test(c)).slice(0, 3);
    return classes.length ? `${tag}.${classes.join('.')}` : tag;
  };
  const windows = Array.from(document.querySelectorAll(
    '[role=dialog], .x-window, .v-window, .syno-promotion-app, [syno-id="promotion-app-window"],'
    + ' .v-notification-panel, .dialog-content, .welcome-app, .v-message-box, .x-msg-box'
  )).filter(visible);
  // Topmost: a modal window before a notification or toast (which blocks nothing), then the
  // highest stacking z-index, later in the document on ties; outermost of nested.
  const nonModal = (el) => el.matches('.v-notification-panel, [role=status]');
  let top = null, topRank = [-1, -1, -1];
  windows.forEach((el, i) => {
    if (windows.some((other) => other !== el && other.contains(el))) return;
    const rank = [nonModal(el) ? 0 : 1, zOf(el), i];
    const wins = rank[0] !== topRank[0] ? rank[0] > topRank[0]
      : rank[1] !== topRank[1] ? rank[1] > topRank[1] : rank[2] > topRank[2];
    if (wins) { top = el; topRank = rank; }
  });
  const scope = top || document.body;
  const clean = (t) => (t || '').replace(/\s+/g, ' ').trim();
  const titles = [];
  scope.querySelectorAll(
    '.welcome-step-title, .title, .v-notification-title, .x-window-header-text, .dialog-content,'
    + ' .v-window-title, h1, h2, h3, [class*="title"]'
  ).forEach((el) => {
    const text = clean(el.innerText);
    const selector = selectorOf(el);
    if (visible(el) && text && text.length < 200
        && !titles.some((t) => t.text === text && t.selector === selector))
      titles.push({selector, text});
  });
  const buttons = [];
  scope.querySelectorAll('button, [role=button], a.v-btn, .x-btn, .v-close-btn, .x-tool-close')
    .forEach((el) => {
      if (!visible(el)) return;
      const text = clean(el.innerText || el.getAttribute('aria-label') || el.title);
      const selector = selectorOf(el);
      if (!buttons.some((b) => b.selector === selector && b.text === text))
        buttons.push({selector, text});
    });
  const html = scope.outerHTML;
  return {
    text: clean(document.body ? document.body.innerText : ''),
    dialog_selector: top ? selectorOf(top) : null,
    dialog_html: html.length > maxHtml ? html.slice(0, maxHtml) + '\n<!-- trimmed -->' : html,
    titles: titles.slice(0, 8),
    buttons: buttons.slice(0, 12),
  };
}
"""


@dataclass
class PageSnapshot:
    """What :data:`capture_js` returned."""

    text: str = ""
    dialog_selector: str | None = None
    dialog_html: str = ""
    titles: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_js(cls, data: Any) -> PageSnapshot:
        """Build from the page's answer, tolerating missing keys."""
        if not isinstance(data, dict):
            return cls()
        return cls(
            text=str(data.get("text") or ""),
            dialog_selector=data.get("dialog_selector"),
            dialog_html=str(data.get("dialog_html") or ""),
            titles=[t for t in data.get("titles") or [] if isinstance(t, dict)],
            buttons=[b for b in data.get("buttons") or [] if isinstance(b, dict)],
        )


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:5]
    return "-".join(words) or "new-screen"


# Buttons that usually dismiss something, best first: what a new screen most likely needs.
_DISMISS = ("no, thanks", "skip", "ok", "close", "cancel", "later", "not now", "next", "submit")


def _rank(button: dict[str, str]) -> int:
    text = button.get("text", "").lower()
    for i, word in enumerate(_DISMISS):
        if text == word or text.startswith(word):
            return i
    return len(_DISMISS) + (0 if "syno-id" in button.get("selector", "") else 1)


# Identifier classes DSM uses for screen titles, best first (see the 7.2.2 profile).
_TITLE_CLASSES = ("welcome-step-title", "v-notification-title", ".title", "dialog-content")


def _title_rank(title: dict[str, str]) -> int:
    selector = title.get("selector", "")
    for i, name in enumerate(_TITLE_CLASSES):
        if selector.endswith(name if name.startswith(".") else f".{name}"):
            return i
    return len(_TITLE_CLASSES)


def suggest_entry(snapshot: PageSnapshot, stage: str) -> str:
    """A YAML profile entry for the screen in ``snapshot``, with alternatives as comments."""
    titles = sorted(snapshot.titles, key=_title_rank)
    title = titles[0] if titles else None
    if title is None and snapshot.dialog_selector:
        title = {"selector": snapshot.dialog_selector, "text": ""}
    buttons = sorted(snapshot.buttons, key=_rank)
    identify: dict[str, str] = {"selector": title["selector"] if title else "REPLACE-ME"}
    if title and title.get("text"):
        identify["text"] = title["text"][:80]
    entry: dict[str, Any] = {
        "id": _slug(title["text"] if title and title.get("text") else "new screen"),
        "identify": identify,
        "actions": [{"click": buttons[0]["selector"]}] if buttons else [],
    }
    lines = [
        f"# Suggested entry for an unknown screen in stage {stage}: add it to the stage's",
        "# screens, check the selectors with Wizard.try_locator(), then rerun.",
    ]
    if buttons:
        lines.append(f'# The action clicks the button "{buttons[0].get("text", "")}".')
    body = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=100)
    lines.append(body.rstrip())
    if len(titles) > 1:
        lines.append("# Identifier candidates:")
        lines += [f"#   {t['selector']}  text: {t.get('text', '')[:80]!r}" for t in titles]
    if buttons:
        lines.append("# Buttons on the screen:")
        lines += [f'#   click: "{b["selector"]}"  ({b.get("text", "")!r})' for b in buttons]
    return "\n".join(lines) + "\n"


_SCREENS_KEY = re.compile(r"^screens:\s*(\[\s*\])?\s*(#.*)?$")
_ITEM = re.compile(r"^(\s*)- ")


def insert_entry(
    path: Path | str,
    suggestion: str,
    note: str = "added from the suggestion for an unknown screen; check its selectors",
) -> str:
    """Insert the suggested entry (YAML of :func:`suggest_entry`) first in ``screens`` of ``path``.

    First, because in ``order: any`` the earlier entries win and a specific new screen must not
    lose to a generic one. The file's comments and layout stay; the entry is indented like the
    screens already there, after the comment ``note``. Returns the new screen's id. Raises
    :class:`ProfileError` when the suggestion is not one entry with an id, the id is already
    there, or the result would not read back as the same screens plus the new one.
    """
    path = Path(path)
    try:
        entries = yaml.safe_load(suggestion)
    except yaml.YAMLError as err:
        raise ProfileError(f"the suggested entry is not YAML: {err}") from err
    if isinstance(entries, dict):
        entries = [entries]
    if not (isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], dict)):
        raise ProfileError("the suggested entry must be one screen (a mapping with an id)")
    entry = entries[0]
    screen_id = entry.get("id")
    if not isinstance(screen_id, str) or not screen_id:
        raise ProfileError("the suggested entry has no id")
    text = path.read_text(encoding="utf-8")
    before = yaml.safe_load(text) or {}
    screens = before.get("screens") or []
    if any(isinstance(s, dict) and s.get("id") == screen_id for s in screens):
        raise ProfileError(f"{path} already has a screen {screen_id!r}: edit that one instead")
    body = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=100)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    key = next((i for i, ln in enumerate(lines) if _SCREENS_KEY.match(ln)), None)
    if key is None:
        indent = "  "
        lines += ["screens:\n"]
        at = len(lines)
    else:
        lines[key] = "screens:\n"
        items = (_ITEM.match(ln) for ln in lines[key + 1 :])
        indent = next((m[1] for m in items if m), "  ")
        at = key + 1
    block = [f"{indent}# {note}\n"] if note else []
    block += [f"{indent}{ln}\n" for ln in body.splitlines()]
    block.append("\n")
    new_text = "".join(lines[:at] + block + lines[at:])
    after = yaml.safe_load(new_text) or {}
    if after.get("screens") != [entry, *screens] or {
        k: v for k, v in after.items() if k != "screens"
    } != {k: v for k, v in before.items() if k != "screens"}:
        raise ProfileError(f"inserting {screen_id!r} into {path} would change more than screens")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
    return screen_id
