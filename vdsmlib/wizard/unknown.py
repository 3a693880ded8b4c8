"""Describe a screen the profile does not know, and suggest a profile entry for it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["PageSnapshot", "capture_js", "suggest_entry"]

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
