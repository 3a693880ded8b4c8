"""No test sleeps for a fixed time to let things settle: tests poll a real condition through
the library's wait loop (``vdsmlib.readiness.wait_for``, ``tests.poll.poll``, a
``WaitStrategy``).

Every call of ``time.sleep``, ``asyncio.sleep`` or Playwright's ``page.wait_for_timeout`` (and
every import of ``sleep`` from ``time`` or ``asyncio``) in ``tests/`` fails this test, unless its
file is in :data:`EXCLUDED` or the line is in :data:`ALLOWED`, each with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

#: Files and folders (relative to tests/, a trailing "/" for a folder) not scanned, and why.
EXCLUDED = {
    "sim/": "the simulator's tests, owned and being moved by another change (see its report)",
    "package/": "the packaging tests, owned by another change",
    "integration/test_consumer_plugin.py": "owned by another change (the pytest plugin's)",
    "unit/test_no_fixed_sleeps.py": "this file: ALLOWED quotes the lines it allows",
}

#: Sleeps that stay, as (file relative to tests/, the line stripped) -> why.
ALLOWED = {
    ("unit/test_healthcheck.py", '"        time.sleep(0.1)\\n"'): (
        "not a sleep of the test process: a line of a `python -c` script the test runs in a "
        "network namespace, a retry loop around a POST (that file belongs to another change)"
    ),
}

_SLEEP = re.compile(
    r"\b(?:time|asyncio)\s*\.\s*sleep\s*\("
    r"|\.wait_for_timeout\s*\("
    r"|^\s*from\s+(?:time|asyncio)\s+import\s+.*\bsleep\b"
)


def sleeps(text: str) -> list[tuple[int, str]]:
    """(line number, stripped line) of each sleep in ``text``."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if _SLEEP.search(line)]


def scanned() -> list[Path]:
    def excluded(rel: str) -> bool:
        return any(rel == e or (e.endswith("/") and rel.startswith(e)) for e in EXCLUDED)

    return [p for p in sorted(TESTS.rglob("*.py")) if not excluded(p.relative_to(TESTS).as_posix())]


def test_no_fixed_sleeps_in_tests() -> None:
    found: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in scanned():
        rel = path.relative_to(TESTS).as_posix()
        for number, line in sleeps(path.read_text(errors="replace")):
            if (rel, line) in ALLOWED:
                used.add((rel, line))
            else:
                found.append(f"tests/{rel}:{number}: {line}")
    assert found == [], (
        "fixed sleeps in tests: poll the condition through vdsmlib.readiness.wait_for "
        "(tests.poll.poll from blocking code), or allow-list the line here with the reason:\n"
        + "\n".join(found)
    )
    stale = sorted(set(ALLOWED) - used)
    assert stale == [], f"allow-listed sleeps that are gone: drop them from ALLOWED: {stale}"


def test_every_exclusion_exists() -> None:
    assert [e for e in EXCLUDED if not (TESTS / e).exists()] == []


def test_the_scan_finds_each_form() -> None:
    sample = "\n".join(
        [
            "time.sleep(1)",
            "    await asyncio.sleep(0.5)",
            "from time import monotonic, sleep",
            "from asyncio import sleep as nap",
            "        await page.wait_for_timeout(500)",
            "x = wait_for(probe, what='x', timeout=5)",
            "asyncio.get_running_loop()",
            "subprocess.run(['sleep', '60'])",
        ]
    )
    assert [n for n, _ in sleeps(sample)] == [1, 2, 3, 4, 5]
