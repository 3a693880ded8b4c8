#!/usr/bin/env python3
"""Check that notebooks are committed without outputs (``--fix`` strips them in place).

    python tools/check_notebooks.py                 # every notebook git tracks
    python tools/check_notebooks.py a.ipynb b.ipynb  # these (what pre-commit passes)
    python tools/check_notebooks.py --fix           # clear outputs and execution counts

Exit code 1 names each notebook and cell that holds outputs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def tracked_notebooks() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", "*.ipynb"], capture_output=True, check=True
    ).stdout
    return [Path(p) for p in out.decode().split("\0") if p]


def problems(nb: dict[str, Any]) -> list[str]:
    found = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {index}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {index}: execution_count {cell['execution_count']}")
    return found


def strip(nb: dict[str, Any]) -> None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--fix", action="store_true", help="strip outputs in place")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files or tracked_notebooks():
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        found = problems(nb)
        if not found:
            continue
        if args.fix:
            strip(nb)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path}: outputs stripped")
            continue
        failed += 1
        print(f"{path}: committed with outputs ({'; '.join(found)})", file=sys.stderr)
    if failed:
        print(
            f"{failed} notebook(s) hold outputs: run `python tools/check_notebooks.py --fix` "
            "(or `make check-notebooks FIX=1`) and commit again",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
